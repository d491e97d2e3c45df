//! Getting each contestant ready before any clock starts: build the stage binaries, import the
//! image, write the OCI bundles, ask whether a docker daemon answers and load the image into it.
//! A contestant that cannot run here is skipped with a note saying why (not installed, not
//! written yet); one that should run but fails is reported as failing, with its first error
//! line. What preparing made (an image in docker's store) is undone at the end ([`Ready::cleanup`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::config::{CommandSpec, EngineSpec, OciSpec, StageSpec, parse_size};
use super::progress::Progress;
use super::store::{Snapshot, Store};
use super::timing::{first_line, run_timed};

/// Where things are, shared by every contestant.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The fixture rootfs: busybox and the probe.
    pub rootfs: PathBuf,
    /// The workload's command and arguments.
    pub workload: Vec<String>,
    /// The workspace, where `cargo build` runs.
    pub workspace: PathBuf,
    /// Cargo's target directory: stage binaries are in its `<triple>/dist/`.
    pub target_dir: PathBuf,
    /// Build the stage binaries first (else use what `<triple>/dist/` holds).
    pub build: bool,
    /// Scratch space for this run, removed at the end.
    pub work: PathBuf,
    /// Kept between runs: the VM's kernel.
    pub cache: PathBuf,
}

impl Setup {
    /// The state root every stage binary gets as `SKIFF_ROOT`: named so that anything left
    /// behind in it is found by the leak check.
    pub fn skiff_root(&self) -> PathBuf {
        self.work.join("skiff-root")
    }

    /// A directory for a run's stdout and stderr files.
    pub fn logs(&self) -> PathBuf {
        self.work.join("logs")
    }
}

/// A contestant ready to be timed.
#[derive(Debug, Clone, Default)]
pub struct Ready {
    /// The program to launch.
    pub program: PathBuf,
    /// Its arguments; `{id}` becomes a fresh id on each run.
    pub args: Vec<String>,
    /// Environment variables added to the harness's own.
    pub env: Vec<(String, String)>,
    /// Prefix of the per-run id (`skiff-bench-runc-<pid>`).
    pub id_prefix: String,
    /// A line the run must print to count as a success (the VM's guest reports its workload's
    /// exit status this way).
    pub expect_stdout: Option<String>,
    /// An OCI runtime and its state directory, to delete containers a run left behind.
    pub oci_state: Option<(PathBuf, PathBuf)>,
    /// A word shown with its name in the chart ("KVM", "TCG").
    pub tag: Option<String>,
    /// Short notes for the table ("memory limit 64 MiB").
    pub notes: Vec<String>,
    /// Longer notes for the report ("KVM: a probe boot hung: using TCG").
    pub details: Vec<String>,
    /// A stage binary's store: after each run the harness waits until what the run started
    /// has gone ([`Store::settle`]).
    pub store: Option<Store>,
    /// Commands run at the end to undo what preparing made (`docker rmi` of the imported image).
    pub undo: Vec<(PathBuf, Vec<String>)>,
    /// Paths the contestant made outside its own store, to remove at the end.
    pub made_paths: Vec<PathBuf>,
}

impl Ready {
    /// The id of run `index`.
    pub fn id(&self, index: usize) -> String {
        format!("{}-{index}", self.id_prefix)
    }

    /// The command of run `index`.
    pub fn command(&self, index: usize) -> Command {
        let id = self.id(index);
        let mut command = Command::new(&self.program);
        command.args(self.args.iter().map(|a| a.replace("{id}", &id)));
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Before a run: what the store holds.
    pub fn before_run(&self) -> Snapshot {
        self.store.as_ref().map(Store::snapshot).unwrap_or_default()
    }

    /// After run `index`, untimed: deletes its OCI container if the runtime left it (`run`
    /// normally deletes it itself); for a stage, waits until the containers the run started
    /// and their monitors are gone, so the next run has the machine to itself.
    pub fn after_run(
        &self,
        index: usize,
        before: &Snapshot,
        timeout: Duration,
    ) -> Result<(), String> {
        if let Some((runtime, state)) = &self.oci_state {
            let id = self.id(index);
            if state.join(&id).exists() {
                let _ = Command::new(runtime)
                    .arg("--root")
                    .arg(state)
                    .args(["delete", "--force", &id])
                    .output();
            }
        }
        match &self.store {
            Some(store) => store.settle(before, timeout),
            None => Ok(()),
        }
    }

    /// At the end: removes what the contestant left or preparing made. Returns what could not
    /// be removed.
    pub fn cleanup(&self) -> Vec<String> {
        let mut left = Vec::new();
        if let Some((runtime, state)) = &self.oci_state
            && let Ok(entries) = std::fs::read_dir(state)
        {
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                let _ = Command::new(runtime)
                    .arg("--root")
                    .arg(state)
                    .args(["delete", "--force", &id])
                    .output();
            }
        }
        if let Some(store) = &self.store {
            left.extend(store.clear());
        }
        for (program, args) in &self.undo {
            let mut command = Command::new(program);
            command.args(args).stdin(std::process::Stdio::null());
            match command.output() {
                Ok(output) if output.status.success() => {}
                Ok(output) => left.push(format!(
                    "{} {}: {}",
                    program.display(),
                    args.join(" "),
                    first_line(&String::from_utf8_lossy(&output.stderr)).unwrap_or_default()
                )),
                Err(e) => left.push(format!("{}: {e}", program.display())),
            }
        }
        for path in &self.made_paths {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            if let Err(e) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                left.push(format!("remove {}: {e}", path.display()));
            }
        }
        left
    }
}

/// What preparing a contestant came to.
#[derive(Debug)]
pub enum Prepared {
    /// It can be timed.
    Ready(Box<Ready>),
    /// It cannot run here, and that is not its fault (not installed, not written yet).
    Skipped(String),
    /// It should run here, and does not.
    Failed(String),
}

/// Fills placeholders in `args`: a `{workload}` argument becomes the workload's arguments.
pub fn fill(args: &[String], values: &BTreeMap<&str, String>, workload: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "{workload}" {
            out.extend(workload.iter().cloned());
            continue;
        }
        let mut filled = arg.clone();
        for (name, value) in values {
            filled = filled.replace(&format!("{{{name}}}"), value);
        }
        out.push(filled);
    }
    out
}

/// The placeholder values every contestant may use.
fn values(setup: &Setup) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("rootfs", setup.rootfs.to_string_lossy().into_owned()),
        ("work", setup.work.to_string_lossy().into_owned()),
    ])
}

/// Finds `program` on `PATH` (or takes it as a path when it holds a `/`).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a helper command (not timed) and returns its stdout, or its first error line.
fn helper(setup: &Setup, command: &mut Command, timeout: Duration) -> Result<String, String> {
    let logs = setup.logs();
    match run_timed(command, timeout, &logs) {
        Ok(done) if done.succeeded() => Ok(done.stdout),
        Ok(done) => Err(done.failure()),
        Err(e) => Err(e.to_string()),
    }
}

/// What `rustc ARGS` prints (`$RUSTC`, else `rustc` on PATH).
fn rustc(args: &[&str]) -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc).args(args).output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The value of one line of `rustc -vV` (`host: `, `LLVM version: `).
fn rustc_version_field(prefix: &str) -> Option<String> {
    rustc(&["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
}

/// This machine's target triple (`x86_64-unknown-linux-gnu`), from `rustc -vV`.
fn host_triple() -> Option<String> {
    rustc_version_field("host: ")
}

/// The toolchain's sysroot, where each installed target has `lib/rustlib/<triple>`.
fn sysroot() -> Option<PathBuf> {
    let path = rustc(&["--print", "sysroot"])?;
    let path = path.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

// ANCHOR: triple
/// The target the bench builds stage binaries for: the host's own architecture with musl
/// (`x86_64-unknown-linux-musl`) when that target is installed, else the host's triple (glibc).
///
/// glibc's start-up asks the CPU for its cache sizes with dozens of `CPUID` instructions,
/// and in a virtual machine each one is answered by the hypervisor: 0.55 ms more for every
/// start of a glibc program on the machine this was measured on, against musl, which asks
/// nothing. `rustup target add x86_64-unknown-linux-musl` installs the target.
pub fn build_triple(host: Option<&str>, sysroot: Option<&Path>) -> Option<String> {
    let host = host?;
    let musl = host
        .strip_suffix("-linux-gnu")
        .map(|arch| format!("{arch}-linux-musl"));
    match (musl, sysroot) {
        (Some(musl), Some(sysroot)) if sysroot.join("lib/rustlib").join(&musl).is_dir() => {
            Some(musl)
        }
        _ => Some(host.to_string()),
    }
}
// ANCHOR_END: triple

/// The cargo profile the bench builds with: `dist` (the workspace's `Cargo.toml`), the release
/// profile with whole-program optimisation, as skiff is installed.
pub const PROFILE: &str = "dist";

/// How the bench links a stage binary: statically (`+crt-static`, musl's default), and with its
/// relocations in the packed format (`DT_RELR`: glibc 2.36, musl 1.2.4). A static binary is
/// position-independent, so its start-up code patches every pointer in it to where the kernel
/// loaded it: 21,700 of them in skiff, listed at 24 bytes each in a table of 520 KiB that is
/// read at every start, and the pages they sit in copied on write. Packed, the list is 2.7 KiB;
/// a `run --rm` here went from 8.0 to 7.5 ms (median of 60 each, interleaved). Linking without
/// position independence (`-C relocation-model=static`) was as fast, and would give up the
/// randomised address of skiff's own code.
pub const RUSTFLAGS: &str = "-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs";

// ANCHOR: profile
/// The profile the stage binaries are optimised with: `pgo/skiff.profdata`, which
/// `scripts/pgo` makes from skiff's and stage 04's runs (see `chroot::pgo`). Every stage links
/// the same crates, so each finds its functions in it. It is used when it is there and this
/// toolchain's LLVM can read it (its own version or a later one: `pgo/llvm-version`); else the
/// binaries are built without it and the reason is the second value.
pub fn profile_flags(workspace: &Path) -> (String, Option<String>) {
    let profile = workspace.join("pgo").join("skiff.profdata");
    let made_by = std::fs::read_to_string(workspace.join("pgo").join("llvm-version"))
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok());
    let ours = rustc_version_field("LLVM version: ")
        .and_then(|v| v.split('.').next()?.parse::<u32>().ok());
    let usable = match (profile.is_file(), made_by, ours) {
        (false, _, _) => Err("no pgo/skiff.profdata (scripts/pgo makes it)".to_string()),
        (true, Some(made_by), Some(ours)) if ours >= made_by => Ok(()),
        (true, made_by, ours) => Err(format!(
            "pgo/skiff.profdata is from LLVM {}, this rustc has LLVM {}",
            made_by.map_or("?".into(), |v| v.to_string()),
            ours.map_or("?".into(), |v| v.to_string())
        )),
    };
    match usable {
        // A function changed since the profile was made is compiled as without one: not
        // worth a warning per function.
        Ok(()) => (
            format!(
                "{RUSTFLAGS} -Cprofile-use={} -Cllvm-args=-no-pgo-warn-mismatch",
                profile.display()
            ),
            None,
        ),
        Err(why) => (RUSTFLAGS.to_string(), Some(why)),
    }
}
// ANCHOR_END: profile

/// The `dist` binary of the workspace package `package`, built first (unless `--no-build`).
fn package_binary(package: &str, setup: &Setup, progress: &Progress) -> Result<PathBuf, Prepared> {
    let triple = build_triple(host_triple().as_deref(), sysroot().as_deref());
    let release = match &triple {
        Some(triple) => setup.target_dir.join(triple).join(PROFILE),
        None => setup.target_dir.join(PROFILE),
    };
    let bin = release.join(package);
    if setup.build {
        let _step = progress.step(&format!(
            "cargo build --profile {PROFILE} -p {package} --target {} (static)",
            triple.as_deref().unwrap_or("host")
        ));
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo
            .args(["build", "--profile", PROFILE, "--quiet", "-p", package])
            .arg("--target-dir")
            .arg(&setup.target_dir)
            .current_dir(&setup.workspace);
        if let Some(triple) = &triple {
            let (flags, without) = profile_flags(&setup.workspace);
            if let Some(why) = without {
                progress.note(&format!("{package}: built without a profile: {why}"));
            }
            cargo.args(["--target", triple]).env("RUSTFLAGS", flags);
        }
        let output = cargo.output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                if stderr.contains("did not match any packages") {
                    return Err(Prepared::Skipped(format!(
                        "package {} is not in the workspace yet",
                        package
                    )));
                }
                let line = stderr
                    .lines()
                    .find(|l| l.starts_with("error"))
                    .map(str::to_string)
                    .or_else(|| first_line(&stderr))
                    .unwrap_or_default();
                return Err(Prepared::Failed(format!(
                    "cargo build --profile {PROFILE} -p {package} failed: {line}"
                )));
            }
            Err(e) => return Err(Prepared::Failed(format!("cannot run cargo: {e}"))),
        }
    }
    if !is_executable(&bin) {
        let hint = if setup.build {
            "the stage has no binary yet"
        } else {
            "--no-build: build it first"
        };
        return Err(Prepared::Skipped(format!("no {} ({hint})", bin.display())));
    }
    Ok(bin)
}

// ANCHOR: stage
/// What a stage binary's environment must say so that it works on its own store: nothing names a
/// daemon. `DOCKER_HOST`, which the docker contestant is found through, would make skiff a client
/// of that daemon (chapter 7's `-H`, `SKIFF_HOST`, `DOCKER_HOST`), and the bench would time
/// dockerd under skiff's name. An empty value names no daemon, for skiff as for docker.
pub const NOT_A_CLIENT: [(&str, &str); 2] = [("DOCKER_HOST", ""), ("SKIFF_HOST", "")];

/// A stage binary's environment, on top of the harness's own: its state root, and no daemon.
fn stage_env(setup: &Setup) -> Vec<(String, String)> {
    let root = setup.skiff_root().to_string_lossy().into_owned();
    let mut env = vec![("SKIFF_ROOT".to_string(), root)];
    env.extend(NOT_A_CLIENT.map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// A stage binary: built with cargo (unless `--no-build`), given a state root of its own; for
/// stage 04 on, the fixture rootfs imported as an image first.
///
/// Stage binaries are built as skiff is installed: the `dist` profile (the release profile with
/// link-time optimisation in one codegen unit: less code, laid out closer, so fewer page faults
/// at every start) and linked statically (`+crt-static`): a dynamically linked program spends
/// about 0.4 ms of every start in the dynamic loader, more than some stages cost. Cargo applies
/// that flag to one target only when `--target` is explicit (build scripts and proc macros are
/// built for the host without it), so the binary lands in `target/<triple>/dist`.
pub fn stage(spec: &StageSpec, setup: &Setup, progress: &Progress) -> Prepared {
    let bin = match package_binary(&spec.package, setup, progress) {
        Ok(bin) => bin,
        Err(not_ready) => return not_ready,
    };
    let env = stage_env(setup);
    let mut values = values(setup);
    if let Some(image) = &spec.image {
        let tarball = match fixture_tarball(setup) {
            Ok(tarball) => tarball,
            Err(failed) => return failed,
        };
        values.insert("image", image.clone());
        values.insert("tarball", tarball.to_string_lossy().into_owned());
        let import = fill(&spec.import, &values, &setup.workload);
        let _step = progress.step(&format!("{} {}", spec.package, import.join(" ")));
        let mut command = Command::new(&bin);
        command.args(&import).envs(env.iter().map(|(k, v)| (k, v)));
        if let Err(line) = helper(setup, &mut command, Duration::from_secs(300)) {
            return Prepared::Failed(format!(
                "{} {} failed: {line}",
                spec.package,
                import.join(" ")
            ));
        }
    }
    Prepared::Ready(Box::new(Ready {
        store: Some(Store {
            program: bin.clone(),
            root: setup.skiff_root(),
        }),
        program: bin,
        args: fill(&spec.args, &values, &setup.workload),
        env,
        ..Ready::default()
    }))
}
// ANCHOR_END: stage

/// The fixture rootfs as a tarball, made once per bench run: what `import` takes.
fn fixture_tarball(setup: &Setup) -> Result<PathBuf, Prepared> {
    let tarball = setup.work.join("busybox-rootfs.tar");
    tar_rootfs(&setup.rootfs, &tarball)
        .map_err(|e| Prepared::Failed(format!("tar the fixture rootfs: {e}")))?;
    Ok(tarball)
}

/// A tarball of the rootfs, as `tar -C ROOTFS -cf TARBALL .` makes it (symlinks kept).
fn tar_rootfs(rootfs: &Path, tarball: &Path) -> std::io::Result<()> {
    if tarball.exists() {
        return Ok(());
    }
    let file = std::fs::File::create(tarball)?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    builder.append_dir_all(".", rootfs)?;
    builder
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    Ok(())
}

/// A program on `PATH`: the `unshare` floor.
pub fn command(spec: &CommandSpec, setup: &Setup) -> Prepared {
    let Some(program) = which(&spec.program) else {
        return Prepared::Skipped(format!("{} is not installed", spec.program));
    };
    Prepared::Ready(Box::new(Ready {
        program,
        args: fill(&spec.args, &values(setup), &setup.workload),
        ..Ready::default()
    }))
}

// ANCHOR: engine
/// A container engine: only when its daemon answers (docker finds it through `DOCKER_HOST`,
/// as its client always does). With `import`, the fixture rootfs is imported as the image
/// first, and removed again at the end; nothing is ever pulled.
pub fn engine(spec: &EngineSpec, setup: &Setup) -> Prepared {
    let Some(client) = which(&spec.client) else {
        return Prepared::Skipped(format!("{} is not installed", spec.client));
    };
    // The bench stays on this machine: no remote daemon.
    for var in ["DOCKER_HOST", "CONTAINER_HOST"] {
        if let Ok(value) = std::env::var(var)
            && !value.starts_with("unix://")
            && spec.global_args.is_empty()
        {
            return Prepared::Skipped(format!(
                "{var}={value} points away from this machine: the bench only talks to a local daemon"
            ));
        }
    }
    // What the client makes outside its store, noted before it runs at all.
    let made_paths: Vec<PathBuf> = spec
        .leaves
        .iter()
        .filter(|p| !p.exists())
        .cloned()
        .collect();
    let mut values = values(setup);
    values.insert("image", spec.image.clone());
    let global_args = fill(&spec.global_args, &values, &setup.workload);
    let run = |args: &[String]| {
        let mut command = Command::new(&client);
        command.args(&global_args).args(args);
        helper(setup, &mut command, Duration::from_secs(300))
    };
    let mut args = global_args.clone();
    args.extend(fill(&spec.args, &values, &setup.workload));
    let ready = |undo| {
        Prepared::Ready(Box::new(Ready {
            program: client.clone(),
            args: args.clone(),
            undo,
            made_paths: made_paths.clone(),
            ..Ready::default()
        }))
    };
    if let Err(line) = run(&["info".to_string()]) {
        // "exit 1: Cannot connect to the Docker daemon..." → the daemon's own words.
        let said = match line.split_once(": ") {
            Some((status, said)) if status.starts_with("exit ") => said,
            _ => line.as_str(),
        };
        let skipped =
            Prepared::Skipped(format!("no daemon answers ({} info: {said})", spec.client));
        return with_paths_removed(skipped, &made_paths);
    }
    if spec.import.is_empty() {
        if run(&["image".into(), "inspect".into(), spec.image.clone()]).is_err() {
            return with_paths_removed(
                Prepared::Skipped(format!(
                    "image {} is not present locally (the bench never pulls: no internet)",
                    spec.image
                )),
                &made_paths,
            );
        }
        return ready(Vec::new());
    }
    let tarball = match fixture_tarball(setup) {
        Ok(tarball) => tarball,
        Err(failed) => return failed,
    };
    values.insert("tarball", tarball.to_string_lossy().into_owned());
    let import = fill(&spec.import, &values, &setup.workload);
    let mut undo_args = global_args.clone();
    undo_args.extend(["rmi".to_string(), spec.image.clone()]);
    if let Err(line) = run(&import) {
        return with_paths_removed(
            Prepared::Failed(format!(
                "{} {} failed: {line}",
                spec.client,
                import.join(" ")
            )),
            &made_paths,
        );
    }
    ready(vec![(client.clone(), undo_args)])
}
// ANCHOR_END: engine

/// A contestant that will not run leaves nothing behind either.
fn with_paths_removed(prepared: Prepared, made_paths: &[PathBuf]) -> Prepared {
    let undo = Ready {
        made_paths: made_paths.to_vec(),
        ..Ready::default()
    };
    for warning in undo.cleanup() {
        eprintln!("bench: not cleaned up: {warning}");
    }
    prepared
}

// ANCHOR: oci
/// An OCI runtime: a bundle whose config.json is the runtime's own `spec` template with the
/// workload, no terminal, the fixture rootfs (read-only), the namespaces of the floor and the
/// memory limit; each run is `RUNTIME --root STATE run --bundle BUNDLE ID` with a fresh id.
pub fn oci(spec: &OciSpec, setup: &Setup, progress: &Progress) -> Prepared {
    let runtime = match &spec.package {
        Some(package) => match package_binary(package, setup, progress) {
            Ok(bin) => bin,
            Err(not_ready) => return not_ready,
        },
        None => match which(&spec.runtime) {
            Some(runtime) => runtime,
            None => return Prepared::Skipped(format!("{} is not installed", spec.runtime)),
        },
    };
    let dir = setup.work.join(format!("oci-{}", spec.runtime));
    let (bundle, state) = (dir.join("bundle"), dir.join("state"));
    for path in [&bundle, &state] {
        if let Err(e) = std::fs::create_dir_all(path) {
            return Prepared::Failed(format!("create {}: {e}", path.display()));
        }
    }
    let mut template = Command::new(&runtime);
    template.arg("spec").current_dir(&bundle);
    if let Err(line) = helper(setup, &mut template, Duration::from_secs(20)) {
        return Prepared::Failed(format!("{} spec failed: {line}", spec.runtime));
    }
    let memory = match spec.memory.as_deref().map(parse_size).transpose() {
        Ok(memory) => memory,
        Err(message) => return Prepared::Failed(message),
    };
    let config = bundle.join("config.json");
    let written = std::fs::read_to_string(&config)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()))
        .and_then(|value| bundle_config(value, &setup.rootfs, &setup.workload, memory))
        .and_then(|value| {
            let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
            std::fs::write(&config, text).map_err(|e| e.to_string())
        });
    if let Err(e) = written {
        return Prepared::Failed(format!("write {}: {e}", config.display()));
    }
    let mut notes = Vec::new();
    if let Some(bytes) = memory {
        notes.push(format!("memory limit {} MiB", bytes >> 20));
    }
    Prepared::Ready(Box::new(Ready {
        program: runtime.clone(),
        args: vec![
            "--root".into(),
            state.to_string_lossy().into_owned(),
            "run".into(),
            "--bundle".into(),
            bundle.to_string_lossy().into_owned(),
            "{id}".into(),
        ],
        id_prefix: format!("skiff-bench-{}-{}", spec.runtime, std::process::id()),
        oci_state: Some((runtime, state)),
        notes,
        ..Ready::default()
    }))
}

/// Edits the runtime's template config.json for the bench.
fn bundle_config(
    mut config: Value,
    rootfs: &Path,
    workload: &[String],
    memory: Option<u64>,
) -> Result<Value, String> {
    let object = |value: &mut Value, key: &str| -> Result<(), String> {
        if !value.get(key).is_some_and(Value::is_object) {
            value
                .as_object_mut()
                .ok_or("config.json is not an object")?
                .insert(key.into(), json!({}));
        }
        Ok(())
    };
    object(&mut config, "process")?;
    config["process"]["args"] = json!(workload);
    config["process"]["terminal"] = json!(false);
    config["root"] = json!({ "path": rootfs, "readonly": true });
    object(&mut config, "linux")?;
    let mut namespaces: Vec<Value> = config["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for kind in ["pid", "network", "ipc", "uts", "mount", "cgroup"] {
        if !namespaces.iter().any(|ns| ns["type"] == kind) {
            namespaces.push(json!({ "type": kind }));
        }
    }
    config["linux"]["namespaces"] = json!(namespaces);
    if let Some(bytes) = memory {
        object(&mut config["linux"], "resources")?;
        config["linux"]["resources"]["memory"] = json!({ "limit": bytes });
    }
    Ok(config)
}
// ANCHOR_END: oci

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_used_only_where_this_toolchain_can_read_it() {
        let workspace = tempfile::tempdir().unwrap();
        let (flags, why) = profile_flags(workspace.path());
        assert_eq!(flags, RUSTFLAGS);
        assert!(why.unwrap().contains("scripts/pgo"));

        let pgo = workspace.path().join("pgo");
        std::fs::create_dir(&pgo).unwrap();
        std::fs::write(pgo.join("skiff.profdata"), b"").unwrap();
        // Made by an LLVM far newer than any rustc's: its format may be unreadable here.
        std::fs::write(pgo.join("llvm-version"), "999\n").unwrap();
        let (flags, why) = profile_flags(workspace.path());
        assert_eq!(flags, RUSTFLAGS);
        assert!(why.unwrap().contains("LLVM 999"));

        // Made by an LLVM as old as can be: this rustc's reads it.
        std::fs::write(pgo.join("llvm-version"), "1\n").unwrap();
        let (flags, why) = profile_flags(workspace.path());
        assert_eq!(why, None);
        let profile = pgo.join("skiff.profdata");
        assert!(flags.starts_with(RUSTFLAGS));
        assert!(flags.contains(&format!("-Cprofile-use={}", profile.display())));
    }

    #[test]
    fn placeholders_are_filled_and_the_workload_spliced() {
        let values = BTreeMap::from([("rootfs", "/r".to_string()), ("image", "bb".to_string())]);
        let args: Vec<String> = ["run", "--rootfs={rootfs}", "{image}", "{workload}", "{id}"]
            .map(String::from)
            .to_vec();
        let workload = vec!["/bin/echo".to_string(), "a b".to_string()];
        assert_eq!(
            fill(&args, &values, &workload),
            ["run", "--rootfs=/r", "bb", "/bin/echo", "a b", "{id}"]
        );
    }

    #[test]
    fn stage_binaries_are_built_for_musl_when_the_toolchain_has_it() {
        let sysroot = tempfile::tempdir().unwrap();
        let host = Some("x86_64-unknown-linux-gnu");
        let glibc = build_triple(host, Some(sysroot.path()));
        assert_eq!(
            glibc.as_deref(),
            host,
            "no musl target installed: the host's own"
        );
        std::fs::create_dir_all(sysroot.path().join("lib/rustlib/x86_64-unknown-linux-musl"))
            .unwrap();
        let musl = build_triple(host, Some(sysroot.path()));
        assert_eq!(musl.as_deref(), Some("x86_64-unknown-linux-musl"));
        let other = build_triple(Some("aarch64-apple-darwin"), Some(sysroot.path()));
        assert_eq!(
            other.as_deref(),
            Some("aarch64-apple-darwin"),
            "not Linux with glibc"
        );
        assert_eq!(build_triple(None, Some(sysroot.path())), None);
    }

    #[test]
    fn a_stage_binary_never_sees_the_daemon_the_docker_contestant_uses() {
        let setup = Setup {
            rootfs: PathBuf::new(),
            workload: Vec::new(),
            workspace: PathBuf::new(),
            target_dir: PathBuf::new(),
            build: false,
            work: PathBuf::from("/tmp/bench-work"),
            cache: PathBuf::new(),
        };
        let output = Command::new("sh")
            .args(["-c", "echo \"[$SKIFF_ROOT][$DOCKER_HOST][$SKIFF_HOST]\""])
            .env("DOCKER_HOST", "unix:///run/docker.sock")
            .env("SKIFF_HOST", "tcp://127.0.0.1:2375")
            .envs(stage_env(&setup))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "[/tmp/bench-work/skiff-root][][]\n"
        );
    }

    #[test]
    fn each_run_gets_its_own_id() {
        let ready = Ready {
            program: "runc".into(),
            args: vec!["run".into(), "{id}".into()],
            id_prefix: "skiff-bench-runc-7".into(),
            ..Ready::default()
        };
        let args: Vec<_> = ready.command(3).get_args().map(|a| a.to_owned()).collect();
        assert_eq!(args, ["run", "skiff-bench-runc-7-3"]);
    }

    #[test]
    fn the_bundle_runs_the_workload_in_the_rootfs_with_a_memory_limit() {
        let template = json!({
            "ociVersion": "1.0.2",
            "process": { "terminal": true, "args": ["sh"] },
            "root": { "path": "rootfs", "readonly": true },
            "linux": { "namespaces": [{ "type": "pid" }, { "type": "mount" }], "resources": {} }
        });
        let config = bundle_config(
            template,
            Path::new("/srv/rootfs"),
            &["/bin/true".into()],
            Some(64 << 20),
        )
        .unwrap();
        assert_eq!(config["process"]["args"], json!(["/bin/true"]));
        assert_eq!(config["process"]["terminal"], json!(false));
        assert_eq!(config["root"]["path"], json!("/srv/rootfs"));
        assert_eq!(
            config["linux"]["resources"]["memory"]["limit"],
            json!(67_108_864)
        );
        let kinds: Vec<&str> = config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ns| ns["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["pid", "mount", "network", "ipc", "uts", "cgroup"]);
        assert_eq!(config["ociVersion"], json!("1.0.2"), "the rest is kept");
    }

    #[test]
    fn which_finds_programs_on_path() {
        assert!(which("sh").is_some());
        assert!(which("no-such-program-here").is_none());
        assert_eq!(which("/bin/sh"), Some(PathBuf::from("/bin/sh")));
    }
}
