//! The bench file, `labs/bench.toml`: the workload, the contestants, the targets.
//!
//! ```toml
//! runs = 20                        # timed runs per contestant (`--runs` overrides)
//! warmup = 2                       # untimed runs before them
//! timeout = 30                     # seconds before one run is killed
//! settle_ms = 100                  # pause after each run
//!
//! [workload]
//! command = ["/bin/true"]          # what every contestant runs in the busybox root
//!
//! [[contestant]]
//! name = "01-chroot"
//! measures = "chroot(2) and nothing else"
//! stage = { package = "chroot", args = ["run", "--rootfs", "{rootfs}", "--", "{workload}"] }
//! ```
//!
//! Each contestant has exactly one of `stage`, `command`, `oci`, `engine` or `vm`. A `[[memory]]`
//! entry is not timed: it starts containers that keep running and reads what their monitors hold
//! ([`MemorySpec`]). A `[[target]]` is a ratio of two medians or a memory figure. Unknown keys
//! are errors (`deny_unknown_fields`), and every error names the file and the line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The placeholders an argument may hold. `{workload}` must be a whole argument: it becomes the
/// workload's command and arguments. `{work}` is the bench's scratch directory, removed at the
/// end (a private store for podman).
pub const PLACEHOLDERS: &[&str] = &["rootfs", "workload", "image", "tarball", "work"];

/// A bench file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BenchFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The bench file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not match the format; toml's message holds the line.
    #[error("{path}: {message}")]
    Parse {
        /// The bench file.
        path: PathBuf,
        /// toml's message, with line, column and the offending text.
        message: String,
    },
    /// The TOML parses but says something impossible.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The bench file.
        path: PathBuf,
        /// The line of the entry at fault.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

// ANCHOR: bench_file
/// The whole bench file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchFile {
    /// Timed runs per contestant.
    pub runs: usize,
    /// Untimed runs before the timed ones (page cache, lazy binding, first-use costs).
    pub warmup: usize,
    /// Seconds before a run is killed and its contestant marked as failing.
    pub timeout: u64,
    /// Milliseconds of pause after each run, so the kernel's deferred teardown of one run
    /// (namespaces, cgroups) is not charged to the next.
    #[serde(default)]
    pub settle_ms: u64,
    /// What every contestant runs.
    pub workload: Workload,
    /// The contestants, in the order of the table and the chart.
    #[serde(rename = "contestant")]
    pub contestants: Vec<Contestant>,
    /// Memory measurements: what a running container's monitor holds.
    #[serde(default, rename = "memory")]
    pub memory: Vec<MemorySpec>,
    /// Goals the report checks ("stage 04 at most twice the floor").
    #[serde(default, rename = "target")]
    pub targets: Vec<Target>,
    /// Published figures shown beside the results, never measured here.
    #[serde(default, rename = "reference")]
    pub references: Vec<Reference>,
}

/// The command every contestant runs inside the busybox root.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The command and its arguments (`["/bin/true"]`).
    pub command: Vec<String>,
}

/// One thing to time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contestant {
    /// Its name in the table, the chart and `--only`.
    pub name: Spanned<String>,
    /// One sentence: what its time includes.
    pub measures: String,
    /// Timed runs, at most (a slow contestant sets fewer).
    pub runs: Option<usize>,
    /// Untimed runs first.
    pub warmup: Option<usize>,
    /// Seconds before one run is killed.
    pub timeout: Option<u64>,
    /// A skiff stage binary.
    pub stage: Option<StageSpec>,
    /// Any program on `PATH` (the `unshare` floor).
    pub command: Option<CommandSpec>,
    /// An OCI runtime (runc, crun) run on a bundle the harness writes.
    pub oci: Option<OciSpec>,
    /// A container engine with a daemon or a store of its own (docker, podman).
    pub engine: Option<EngineSpec>,
    /// A virtual machine booting the same busybox.
    pub vm: Option<VmSpec>,
}
// ANCHOR_END: bench_file

/// A stage binary of this workspace, built statically with `cargo build --release -p PACKAGE`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// The package, which is also the binary's name.
    pub package: String,
    /// The arguments after the binary.
    pub args: Vec<String>,
    /// An image to prepare first from a tarball of the fixture rootfs (stage 04 and later).
    pub image: Option<String>,
    /// The arguments that import `{tarball}` as `{image}` (`["import", "{tarball}", "{image}"]`).
    #[serde(default)]
    pub import: Vec<String>,
}

/// A program looked up on `PATH`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The program; the contestant is skipped when it is not installed.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

/// An OCI runtime: `RUNTIME --root STATE run --bundle DIR ID`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OciSpec {
    /// The runtime's program name (`runc`, `crun`).
    pub runtime: String,
    /// The workspace package whose binary is the runtime (`skiff-runtime`), built as a stage's
    /// is; without it the runtime is looked up on `PATH`.
    pub package: Option<String>,
    /// A memory limit in the bundle (`64m`), as stage 03's `--memory` sets one.
    pub memory: Option<String>,
}

/// A container engine client: timed only when its daemon answers and the image is already here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// The client program (`docker`, `podman`).
    pub client: String,
    /// Flags before the subcommand that keep it on this machine (`-H unix:///var/run/docker.sock`).
    #[serde(default)]
    pub global_args: Vec<String>,
    /// The image it runs. It is never pulled: with `import`, the harness makes it from the
    /// fixture rootfs before timing and removes it at the end; without, it must be present.
    pub image: String,
    /// The arguments that import `{tarball}` as `{image}` (`["import", "{tarball}", "{image}"]`).
    #[serde(default)]
    pub import: Vec<String>,
    /// The arguments of the timed run.
    pub args: Vec<String>,
    /// Paths the client makes outside its own store (podman's blob cache, runc's default
    /// state directory): each one that did not exist before the bench is removed at the end.
    #[serde(default)]
    pub leaves: Vec<PathBuf>,
}

/// What a running container costs in memory: `containers` containers started with a stage
/// binary's `args` (a `run -d` of a command that keeps running), and the resident memory of
/// each one's monitor, the parent of its first process (`inspect -f '{{.State.Pid}}'`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySpec {
    /// Its name in the report and `--only`.
    pub name: Spanned<String>,
    /// One sentence: what it measures.
    pub measures: String,
    /// How many containers run at once.
    pub containers: usize,
    /// The program the monitor runs once its container is up (its argv[0], `skiff-pump`): the
    /// harness waits for it before reading the monitor's memory.
    pub monitor: Option<String>,
    /// The stage binary, the image and the arguments that start one container.
    pub stage: StageSpec,
}

/// Whether the virtual machine uses KVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvmMode {
    /// Use KVM when a probe boot with it succeeds within `kvm_probe_timeout`.
    Auto,
    /// Always (fail when it does not work).
    On,
    /// Never: QEMU's emulator (TCG).
    Off,
}

/// A QEMU virtual machine booting a Debian kernel with the fixture rootfs as its initramfs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    /// The QEMU program.
    pub qemu: String,
    /// The Debian package whose kernel boots (`linux-image-amd64` resolves to the current one).
    pub kernel_package: String,
    /// The guest's memory (`256m`).
    pub memory: String,
    /// KVM: `auto`, `on` or `off`.
    pub kvm: KvmMode,
    /// Seconds a probe boot with KVM may take before KVM counts as not working.
    pub kvm_probe_timeout: u64,
}

/// A goal the report checks: either `contestant`'s median is at most `max` times the median of
/// `of`, or the median RSS of the `memory` measurement is at most `max_mib` MiB.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The goal in words ("stage 04 at most twice the floor").
    pub goal: Spanned<String>,
    /// A ratio goal: the contestant it is about.
    pub contestant: Option<String>,
    /// A ratio goal: the contestant it is measured against.
    pub of: Option<String>,
    /// A ratio goal: the largest ratio that meets it.
    pub max: Option<f64>,
    /// A memory goal: the `[[memory]]` measurement it is about.
    pub memory: Option<String>,
    /// A memory goal: the largest median RSS, MiB, that meets it.
    pub max_mib: Option<f64>,
}

/// What a target compares, once validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal<'a> {
    /// `contestant`'s median over `of`'s median, at most `max`.
    Ratio {
        /// The contestant the goal is about.
        contestant: &'a str,
        /// The one it is measured against.
        of: &'a str,
        /// The largest ratio that meets it.
        max: f64,
    },
    /// A memory measurement's median RSS, at most `max_mib` MiB.
    Memory {
        /// The measurement.
        memory: &'a str,
        /// The largest median RSS that meets it, MiB.
        max_mib: f64,
    },
}

impl Target {
    /// What it compares; `None` for a target that mixes the two kinds (validation refuses it).
    pub fn compares(&self) -> Option<Goal<'_>> {
        match (
            self.contestant.as_deref(),
            self.of.as_deref(),
            self.max,
            self.memory.as_deref(),
            self.max_mib,
        ) {
            (Some(contestant), Some(of), Some(max), None, None) => Some(Goal::Ratio {
                contestant,
                of,
                max,
            }),
            (None, None, None, Some(memory), Some(max_mib)) => {
                Some(Goal::Memory { memory, max_mib })
            }
            _ => None,
        }
    }
}

/// A published figure, drawn on the chart and quoted in the report, never measured here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Its label on the chart.
    pub name: String,
    /// The figure in milliseconds.
    pub ms: f64,
    /// Where it comes from and what it counts.
    pub source: String,
}

/// What kind of contestant, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A skiff stage binary.
    Stage,
    /// A program on `PATH`.
    Command,
    /// An OCI runtime.
    Oci,
    /// A container engine client.
    Engine,
    /// A virtual machine.
    Vm,
}

impl Contestant {
    /// The contestant's name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// Which kind it is (validation guarantees exactly one section).
    pub fn kind(&self) -> Kind {
        match (&self.stage, &self.command, &self.oci, &self.engine) {
            (Some(_), ..) => Kind::Stage,
            (_, Some(_), ..) => Kind::Command,
            (_, _, Some(_), _) => Kind::Oci,
            (_, _, _, Some(_)) => Kind::Engine,
            _ => Kind::Vm,
        }
    }

    fn sections(&self) -> usize {
        [
            self.stage.is_some(),
            self.command.is_some(),
            self.oci.is_some(),
            self.engine.is_some(),
            self.vm.is_some(),
        ]
        .iter()
        .filter(|present| **present)
        .count()
    }

    /// Every argument list the harness fills placeholders into.
    fn argument_lists(&self) -> Vec<&[String]> {
        let mut lists: Vec<&[String]> = Vec::new();
        if let Some(stage) = &self.stage {
            lists.push(&stage.args);
            lists.push(&stage.import);
        }
        if let Some(command) = &self.command {
            lists.push(&command.args);
        }
        if let Some(engine) = &self.engine {
            lists.push(&engine.args);
            lists.push(&engine.global_args);
            lists.push(&engine.import);
        }
        lists
    }
}

impl BenchFile {
    /// Reads and validates the bench file at `path`.
    pub fn load(path: &Path) -> Result<BenchFile, BenchFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        BenchFile::parse(path, &text)
    }

    /// Parses and validates bench text; `path` is for messages.
    pub fn parse(path: &Path, text: &str) -> Result<BenchFile, BenchFileError> {
        let file: BenchFile = toml::from_str(text).map_err(|err| BenchFileError::Parse {
            path: path.to_path_buf(),
            message: err.to_string().trim_end().to_string(),
        })?;
        file.validate(path, text)?;
        Ok(file)
    }

    fn validate(&self, path: &Path, text: &str) -> Result<(), BenchFileError> {
        let invalid = |at: usize, message: String| BenchFileError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, at),
            message,
        };
        if self.runs == 0 {
            return Err(invalid(0, "runs must be at least 1".into()));
        }
        if self.workload.command.is_empty() {
            return Err(invalid(0, "workload.command is empty".into()));
        }
        let mut names = BTreeSet::new();
        for contestant in &self.contestants {
            let at = contestant.name.span().start;
            let name = contestant.name();
            if !names.insert(name) {
                return Err(invalid(at, format!("two contestants are named {name:?}")));
            }
            if contestant.sections() != 1 {
                return Err(invalid(
                    at,
                    format!(
                        "contestant {name:?} needs exactly one of stage, command, oci, engine, vm"
                    ),
                ));
            }
            if contestant.runs == Some(0) {
                return Err(invalid(
                    at,
                    format!("contestant {name:?}: runs must be at least 1"),
                ));
            }
            check_arguments(&contestant.argument_lists())
                .map_err(|message| invalid(at, format!("contestant {name:?}: {message}")))?;
            if let Some(stage) = &contestant.stage {
                check_stage(stage)
                    .map_err(|message| invalid(at, format!("contestant {name:?}: {message}")))?;
            }
            if let Some(engine) = &contestant.engine
                && !engine.import.is_empty()
                && !engine.import.iter().any(|a| a.contains("{tarball}"))
            {
                return Err(invalid(
                    at,
                    format!("contestant {name:?}: engine.import must use {{tarball}}"),
                ));
            }
            for size in [
                contestant.oci.as_ref().and_then(|o| o.memory.as_deref()),
                contestant.vm.as_ref().map(|v| v.memory.as_str()),
            ]
            .into_iter()
            .flatten()
            {
                parse_size(size)
                    .map_err(|message| invalid(at, format!("contestant {name:?}: {message}")))?;
            }
        }
        let mut memory_names = BTreeSet::new();
        for memory in &self.memory {
            let at = memory.name.span().start;
            let name = memory.name.get_ref().as_str();
            if names.contains(name) || !memory_names.insert(name) {
                return Err(invalid(
                    at,
                    format!("two contestants or memory measurements are named {name:?}"),
                ));
            }
            if memory.containers == 0 {
                return Err(invalid(
                    at,
                    format!("memory {name:?}: containers must be at least 1"),
                ));
            }
            check_arguments(&[&memory.stage.args, &memory.stage.import])
                .and_then(|()| check_stage(&memory.stage))
                .map_err(|message| invalid(at, format!("memory {name:?}: {message}")))?;
        }
        for target in &self.targets {
            let at = target.goal.span().start;
            let goal = target.goal.get_ref();
            let (named, known, limit) = match target.compares() {
                Some(Goal::Ratio {
                    contestant,
                    of,
                    max,
                }) => (vec![contestant, of], &names, max),
                Some(Goal::Memory { memory, max_mib }) => (vec![memory], &memory_names, max_mib),
                None => {
                    return Err(invalid(
                        at,
                        format!(
                            "target {goal:?} needs either contestant, of and max (a ratio) \
                             or memory and max_mib (a size)"
                        ),
                    ));
                }
            };
            for name in named {
                if !known.contains(name) {
                    let what = if target.memory.is_some() {
                        "memory measurement"
                    } else {
                        "contestant"
                    };
                    return Err(invalid(
                        at,
                        format!("target {goal:?} names {name:?}, which is not a {what}"),
                    ));
                }
            }
            if limit.is_nan() || limit <= 0.0 {
                return Err(invalid(
                    at,
                    format!("target {goal:?}: its limit must be a positive number"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks the placeholders of every argument list.
fn check_arguments(lists: &[&[String]]) -> Result<(), String> {
    for arg in lists.iter().copied().flatten() {
        if let Some(unknown) = unknown_placeholder(arg) {
            return Err(format!(
                "unknown placeholder {{{unknown}}} in {arg:?} (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        if arg.contains("{workload}") && arg != "{workload}" {
            return Err("{workload} must be a whole argument".into());
        }
    }
    Ok(())
}

fn check_stage(stage: &StageSpec) -> Result<(), String> {
    if stage.image.is_some() == stage.import.is_empty() {
        return Err("stage.image and stage.import go together".into());
    }
    Ok(())
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(1, |head| head.matches('\n').count() + 1)
}

/// The first `{name}` in `arg` that is not a known placeholder.
fn unknown_placeholder(arg: &str) -> Option<&str> {
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Some(name);
        }
        rest = &after[close + 1..];
    }
    None
}

/// Parses a size as Docker's `--memory` takes it: a number of bytes with an optional `k`, `m`
/// or `g` suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, unit) = match lower.char_indices().last() {
        Some((at, 'k')) => (&lower[..at], 1u64 << 10),
        Some((at, 'm')) => (&lower[..at], 1 << 20),
        Some((at, 'g')) => (&lower[..at], 1 << 30),
        _ => (lower, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid size {text:?}: use a number with k, m or g (64m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
runs = 5
warmup = 1
timeout = 10

[workload]
command = ["/bin/true"]

[[contestant]]
name = "floor"
measures = "unshare and chroot"
command = { program = "unshare", args = ["--pid", "--fork", "chroot", "{rootfs}", "{workload}"] }

[[contestant]]
name = "runc"
measures = "runc on a bundle"
runs = 3
[contestant.oci]
runtime = "runc"
memory = "64m"

[[target]]
goal = "runc at most ten times the floor"
contestant = "runc"
of = "floor"
max = 10.0
"#;

    fn parse(text: &str) -> Result<BenchFile, BenchFileError> {
        BenchFile::parse(Path::new("bench.toml"), text)
    }

    #[test]
    fn the_repository_bench_file_parses() {
        let path = crate::labs_dir().join("bench.toml");
        let file = BenchFile::load(&path).unwrap();
        let kinds: Vec<Kind> = file.contestants.iter().map(Contestant::kind).collect();
        for kind in [
            Kind::Stage,
            Kind::Command,
            Kind::Oci,
            Kind::Engine,
            Kind::Vm,
        ] {
            assert!(
                kinds.contains(&kind),
                "bench.toml has no {kind:?} contestant"
            );
        }
    }

    #[test]
    fn the_repository_bench_file_has_stage_07_its_memory_and_its_targets() {
        let path = crate::labs_dir().join("bench.toml");
        let file = BenchFile::load(&path).unwrap();
        let args = |name: &str| {
            let contestant = file.contestants.iter().find(|c| c.name() == name).unwrap();
            let stage = contestant.stage.as_ref().unwrap();
            assert_eq!(stage.package, "skiff", "{name}");
            assert_eq!(stage.image.as_deref(), Some("busybox"), "{name}");
            stage.args.join(" ")
        };
        assert_eq!(
            args("07-skiff-none"),
            "run --rm --network none --memory 64m {image} {workload}"
        );
        assert_eq!(
            args("07-skiff-bridge"),
            "run --rm --memory 64m {image} {workload}"
        );
        assert_eq!(
            args("07-skiff-detached"),
            "run -d --rm --network none --memory 64m {image} {workload}"
        );
        let [memory] = file.memory.as_slice() else {
            panic!("one memory measurement");
        };
        assert_eq!(memory.containers, 10);
        assert_eq!(memory.monitor.as_deref(), Some("skiff-pump"));
        assert!(memory.stage.args.starts_with(&["run".into(), "-d".into()]));
        let goals: Vec<Goal> = file.targets.iter().filter_map(Target::compares).collect();
        assert_eq!(goals.len(), file.targets.len(), "every target is one kind");
        for goal in [
            Goal::Ratio {
                contestant: "07-skiff-none",
                of: "floor",
                max: 1.5,
            },
            Goal::Ratio {
                contestant: "07-skiff-detached",
                of: "floor",
                max: 2.0,
            },
            Goal::Memory {
                memory: "07-monitor-memory",
                max_mib: 2.0,
            },
            Goal::Memory {
                memory: "07-monitor-memory",
                max_mib: 1.0,
            },
        ] {
            assert!(goals.contains(&goal), "no target {goal:?}");
        }
        let engines: Vec<&EngineSpec> = file
            .contestants
            .iter()
            .filter_map(|c| c.engine.as_ref())
            .collect();
        for engine in engines {
            assert_eq!(
                engine.import,
                ["import", "{tarball}", "{image}"],
                "{}",
                engine.client
            );
            assert!(
                !engine.global_args.iter().any(|a| a == "-H"),
                "{} leaves DOCKER_HOST to choose the daemon",
                engine.client
            );
        }
    }

    const MEMORY: &str = r#"
[[memory]]
name = "07-monitor-memory"
measures = "monitors"
containers = 10
monitor = "skiff-pump"
[memory.stage]
package = "skiff"
image = "busybox"
import = ["import", "{tarball}", "{image}"]
args = ["run", "-d", "{image}", "/bin/sleep", "60"]

[[target]]
goal = "monitor at most 2 MiB"
memory = "07-monitor-memory"
max_mib = 2.0
"#;

    #[test]
    fn a_memory_measurement_and_its_target_parse() {
        let file = parse(&format!("{MINIMAL}{MEMORY}")).unwrap();
        assert_eq!(file.memory[0].name.get_ref(), "07-monitor-memory");
        assert_eq!(file.memory[0].stage.package, "skiff");
        assert_eq!(
            file.targets[1].compares(),
            Some(Goal::Memory {
                memory: "07-monitor-memory",
                max_mib: 2.0
            })
        );
        assert_eq!(
            file.targets[0].compares(),
            Some(Goal::Ratio {
                contestant: "runc",
                of: "floor",
                max: 10.0
            })
        );
    }

    #[test]
    fn memory_measurements_and_targets_are_checked() {
        let full = format!("{MINIMAL}{MEMORY}");
        let refused = |from: &str, to: &str| {
            let text = full.replace(from, to);
            assert_ne!(text, full, "{from:?} is in the text");
            parse(&text).unwrap_err().to_string()
        };
        let message = refused("containers = 10", "containers = 0");
        assert!(
            message.ends_with("memory \"07-monitor-memory\": containers must be at least 1"),
            "{message}"
        );
        let message = refused("memory = \"07-monitor-memory\"", "memory = \"07-monitor\"");
        assert!(
            message.contains("names \"07-monitor\", which is not a memory measurement"),
            "{message}"
        );
        let message = refused("max_mib = 2.0", "max_mib = 2.0\nof = \"floor\"");
        assert!(
            message.contains("needs either contestant, of and max (a ratio) or memory and max_mib"),
            "{message}"
        );
        let message = refused("max_mib = 2.0", "max_mib = -1.0");
        assert!(message.contains("must be a positive number"), "{message}");
        let message = refused("name = \"07-monitor-memory\"", "name = \"floor\"");
        assert!(message.contains("are named \"floor\""), "{message}");
        let message = refused("\"/bin/sleep\"", "\"{sleep}\"");
        assert!(message.contains("unknown placeholder {sleep}"), "{message}");
    }

    #[test]
    fn a_minimal_file_parses() {
        let file = parse(MINIMAL).unwrap();
        assert_eq!(file.runs, 5);
        assert_eq!(file.contestants.len(), 2);
        assert_eq!(file.contestants[0].kind(), Kind::Command);
        assert_eq!(file.contestants[1].kind(), Kind::Oci);
        assert_eq!(file.contestants[1].runs, Some(3));
        assert_eq!(file.targets[0].max, Some(10.0));
    }

    #[test]
    fn an_unknown_key_names_file_and_line() {
        let text = MINIMAL.replace("runtime = \"runc\"", "runtime = \"runc\"\nmemroy = \"64m\"");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.starts_with("bench.toml: "), "{message}");
        assert!(message.contains("line 20"), "{message}");
        assert!(message.contains("memroy"), "{message}");
    }

    #[test]
    fn a_contestant_with_two_kinds_is_refused_with_its_line() {
        let text = MINIMAL.replace(
            "measures = \"runc on a bundle\"",
            "measures = \"runc on a bundle\"\ncommand = { program = \"runc\", args = [] }",
        );
        let message = parse(&text).unwrap_err().to_string();
        assert_eq!(
            message,
            "bench.toml:15: contestant \"runc\" needs exactly one of stage, command, oci, engine, vm"
        );
    }

    #[test]
    fn unknown_placeholders_and_split_workloads_are_refused() {
        let text = MINIMAL.replace("{rootfs}", "{rootdir}");
        let message = parse(&text).unwrap_err().to_string();
        assert!(
            message.contains("unknown placeholder {rootdir}"),
            "{message}"
        );
        let text = MINIMAL.replace("\"{workload}\"", "\"sh -c {workload}\"");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("must be a whole argument"), "{message}");
    }

    #[test]
    fn targets_must_name_contestants() {
        let text = MINIMAL.replace("of = \"floor\"", "of = \"flor\"");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("bench.toml:23:"), "{message}");
        assert!(
            message.contains("\"flor\", which is not a contestant"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_names_and_bad_sizes_are_refused() {
        let text = MINIMAL.replace("name = \"runc\"", "name = \"floor\"");
        assert!(
            parse(&text)
                .unwrap_err()
                .to_string()
                .contains("two contestants")
        );
        let text = MINIMAL.replace("\"64m\"", "\"lots\"");
        assert!(
            parse(&text)
                .unwrap_err()
                .to_string()
                .contains("invalid size \"lots\"")
        );
    }

    #[test]
    fn sizes_parse_like_docker_memory() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("").is_err());
        assert!(parse_size("0m").is_err());
        assert!(parse_size("m").is_err());
    }
}
