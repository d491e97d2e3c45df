//! # The startup benchmark: `cargo run --release -p labs -- bench`
//!
//! How long does it take to start a container, run `/bin/true` in it, and see it exit? The bench
//! times that for each stage binary of skiff (so the book can show what each layer of isolation
//! costs), for the floor (util-linux's `unshare` and `chroot` making the same namespaces), for
//! runc, crun, docker and podman where they can run, and for a virtual machine booting the same
//! busybox. For stage 07, whose containers keep running under a monitor, it also measures what
//! a running container costs in memory ([`resident`]). `labs/bench.toml` lists the contestants
//! ([`config`]).
//!
//! 1. Every contestant is prepared before any clock starts ([`prepare`], [`vm`]): stage binaries
//!    built, the image imported, OCI bundles written, the kernel fetched, KVM probed.
//! 2. Each is run a few times untimed (warm-up), then timed ([`timing`]): wall time from launch
//!    to exit, and wait4's peak RSS. A small static program, `bench-launcher` (`launcher.rs`
//!    here, compiled on its own by `build.rs`), does the forking and the timing. After each run
//!    the harness waits, untimed, until what the run started has gone ([`store`]). Then the
//!    memory measurements run ([`resident`]).
//! 3. The results become a table on the terminal, a markdown report and an SVG chart under
//!    `target/bench/` ([`report`], [`svg`]), with the machine they were measured on
//!    ([`machine`]).
//!
//! Nothing here runs in `cargo test`: speed is a benchmark, never a timed test.

pub mod config;
pub mod cpio;
pub mod machine;
pub mod prepare;
pub mod progress;
pub mod report;
pub mod resident;
pub mod stats;
pub mod store;
pub mod svg;
pub mod timing;
pub mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use config::{BenchFile, Contestant, MemorySpec};
use machine::Machine;
use prepare::{Prepared, Ready, Setup};
use progress::Progress;
use report::{Entry, Measurement, MemoryEntry, MemoryOutcome, Outcome, Results};
use stats::{Summary, format_ms};
use timing::{first_line, run_timed};

/// The flags of `labs bench`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {
    /// Timed runs per contestant (default: `runs` in bench.toml); a contestant with its own
    /// smaller `runs` there (the VM) keeps it
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
    /// Only the contestants and memory measurements whose name contains NAME (repeat, or
    /// separate with commas, for more)
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub only: Vec<String>,
    /// The bench file [default: labs/bench.toml]
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Use the stage binaries already in TARGET/<triple>/dist instead of building them
    #[arg(long)]
    pub no_build: bool,
    /// Where report.md and startup.svg go [default: TARGET/bench]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    let labs = crate::labs_dir();
    labs.parent().map_or(labs.clone(), Path::to_path_buf)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else the one this harness was built
/// in (the workspace's `target/` for a plain `cargo run`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return std::path::absolute(&dir).unwrap_or(dir);
    }
    let fixtures = PathBuf::from(env!("LAB_FIXTURES"));
    fixtures
        .parent()
        .map_or_else(|| workspace_dir().join("target"), Path::to_path_buf)
}

// ANCHOR: run
/// Runs the bench: prepare every contestant, time them taking turns, clean up, report.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let path = options
        .file
        .clone()
        .unwrap_or_else(|| crate::labs_dir().join("bench.toml"));
    let file = BenchFile::load(&path)?;
    if options.runs == Some(0) {
        bail!("--runs must be at least 1");
    }
    let (selected, memory) = select(&file, &options.only)?;
    let target_dir = target_dir();
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| target_dir.join("bench"));
    let fixtures = crate::fixtures()?;
    let progress = Progress::new();
    let work = WorkDir::create(&out)?;
    let setup = Setup {
        rootfs: fixtures.rootfs.clone(),
        workload: file.workload.command.clone(),
        workspace: workspace_dir(),
        target_dir,
        build: !options.no_build,
        work: work.path.clone(),
        cache: out.join("cache"),
    };

    // 1. Everything slow or noisy (builds, downloads, probes) before any clock starts.
    let prepared: Vec<(&Contestant, Prepared)> = selected
        .into_iter()
        .map(|contestant| (contestant, prepare_one(contestant, &setup, &progress)))
        .collect();
    let memory: Vec<(&MemorySpec, Prepared)> = memory
        .into_iter()
        .map(|spec| (spec, prepare::stage(&spec.stage, &setup, &progress)))
        .collect();

    // 2. Time them all, one run of each per round.
    for (contestant, prepared) in &prepared {
        match prepared {
            Prepared::Skipped(why) => {
                progress.note(&format!("{}: skipped: {why}", contestant.name()))
            }
            Prepared::Failed(why) => {
                progress.note(&format!("{}: FAILED: {why}", contestant.name()))
            }
            Prepared::Ready(_) => {}
        }
    }
    let machine = Machine::read();
    let mut timings: Vec<Option<Timing>> = prepared
        .iter()
        .map(|(contestant, prepared)| match prepared {
            Prepared::Ready(ready) => {
                Some(Timing::new(contestant, ready, &file, options, &progress))
            }
            _ => None,
        })
        .collect();
    round_robin(&mut timings, &setup, Duration::from_millis(file.settle_ms));
    // Containers that keep running, after the clocks: they must not share the machine with
    // a timed run.
    let memory_entries: Vec<MemoryEntry> = memory
        .iter()
        .map(|(spec, prepared)| measure_memory(spec, prepared, &setup, &file, &progress))
        .collect();
    let mut entries = Vec::new();
    for ((contestant, prepared), timing) in prepared.iter().zip(timings) {
        let mut entry = Entry {
            name: contestant.name().to_string(),
            measures: contestant.measures.clone(),
            kind: contestant.kind(),
            tag: None,
            notes: vec![],
            details: vec![],
            outcome: Outcome::Skipped(String::new()),
        };
        match (prepared, timing) {
            (Prepared::Ready(ready), Some(timing)) => {
                entry.outcome = timing.outcome();
                entry.tag.clone_from(&ready.tag);
                entry.notes.clone_from(&ready.notes);
                entry.details.clone_from(&ready.details);
            }
            (Prepared::Skipped(why), _) => entry.outcome = Outcome::Skipped(why.clone()),
            (Prepared::Failed(why), _) => entry.outcome = Outcome::Failed(why.clone()),
            (Prepared::Ready(_), None) => entry.outcome = Outcome::Failed("not timed".into()),
        }
        entries.push(entry);
    }

    // 3. Clean up, then report.
    let mut warnings = Vec::new();
    for prepared in prepared
        .iter()
        .map(|(_, p)| p)
        .chain(memory.iter().map(|(_, p)| p))
    {
        if let Prepared::Ready(ready) = prepared {
            warnings.extend(ready.cleanup());
        }
    }
    let launcher_floor_mib = launcher_floor(&setup);
    warnings.extend(work.finish());
    let results = Results {
        machine,
        launcher_floor_mib,
        workload: file.workload.command.join(" "),
        entries,
        memory: memory_entries,
        targets: file.targets.clone(),
        references: file.references.clone(),
    };
    write_outputs(&results, &out)?;
    for warning in &warnings {
        eprintln!("bench: not cleaned up: {warning}");
    }
    // The same scan as `labs leaks`: it also sees what other test runs on this host left.
    for leak in crate::leaks::scan(&[]) {
        eprintln!("bench: leak check: {leak}");
    }
    Ok(())
}
// ANCHOR_END: run

/// The contestants and memory measurements `--only` keeps (all when it is empty).
fn select<'a>(
    file: &'a BenchFile,
    only: &[String],
) -> anyhow::Result<(Vec<&'a Contestant>, Vec<&'a MemorySpec>)> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let contestants: Vec<&Contestant> = file
        .contestants
        .iter()
        .filter(|c| wanted(c.name()))
        .collect();
    let memory: Vec<&MemorySpec> = file
        .memory
        .iter()
        .filter(|m| wanted(m.name.get_ref()))
        .collect();
    if contestants.is_empty() && memory.is_empty() {
        let names: Vec<&str> = file
            .contestants
            .iter()
            .map(Contestant::name)
            .chain(file.memory.iter().map(|m| m.name.get_ref().as_str()))
            .collect();
        bail!(
            "no contestant matches --only {}: the contestants are {}",
            only.join(", "),
            names.join(", ")
        );
    }
    Ok((contestants, memory))
}

/// Runs one memory measurement, if its stage binary is ready.
fn measure_memory(
    spec: &MemorySpec,
    prepared: &Prepared,
    setup: &Setup,
    file: &BenchFile,
    progress: &Progress,
) -> MemoryEntry {
    let name = spec.name.get_ref();
    let outcome = match prepared {
        Prepared::Ready(ready) => {
            let _step = progress.step(&format!("{name}: {} containers", spec.containers));
            let timeout = Duration::from_secs(file.timeout);
            match resident::measure(spec, ready, setup, timeout) {
                Ok(resident) => MemoryOutcome::Measured(resident),
                Err(why) => {
                    progress.note(&format!("{name}: FAILED: {why}"));
                    MemoryOutcome::Failed(why)
                }
            }
        }
        Prepared::Skipped(why) => {
            progress.note(&format!("{name}: skipped: {why}"));
            MemoryOutcome::Skipped(why.clone())
        }
        Prepared::Failed(why) => {
            progress.note(&format!("{name}: FAILED: {why}"));
            MemoryOutcome::Failed(why.clone())
        }
    };
    MemoryEntry {
        name: name.clone(),
        measures: spec.measures.clone(),
        outcome,
    }
}

fn prepare_one(contestant: &Contestant, setup: &Setup, progress: &Progress) -> Prepared {
    if let Some(spec) = &contestant.stage {
        prepare::stage(spec, setup, progress)
    } else if let Some(spec) = &contestant.command {
        prepare::command(spec, setup)
    } else if let Some(spec) = &contestant.oci {
        prepare::oci(spec, setup, progress)
    } else if let Some(spec) = &contestant.engine {
        prepare::engine(spec, setup)
    } else if let Some(spec) = &contestant.vm {
        vm::prepare(spec, setup, progress)
    } else {
        Prepared::Failed("no kind of contestant given".into())
    }
}

// ANCHOR: time
/// Runs every contestant once per round until each has done its warm-up and timed runs. Taking
/// turns, rather than one contestant after the other, spreads whatever else the machine is
/// doing over all of them alike, so it does not bend the ratios between them. After each run
/// the bench pauses for `settle`: the kernel tears some things down after the process is gone
/// (a network namespace, a cgroup), and that work must not land in the next contestant's time.
fn round_robin(timings: &mut [Option<Timing>], setup: &Setup, settle: Duration) {
    while timings.iter().flatten().any(Timing::pending) {
        for timing in timings.iter_mut().flatten().filter(|t| t.pending()) {
            timing.run_once(setup);
            std::thread::sleep(settle);
        }
    }
}

/// One contestant's runs so far.
struct Timing<'a> {
    ready: &'a Ready,
    warmup: usize,
    runs: usize,
    timeout: Duration,
    started: usize,
    walls: Vec<Duration>,
    rss_mib: Vec<f64>,
    failure: Option<String>,
    bar: progress::Runs,
}

impl<'a> Timing<'a> {
    fn new(
        contestant: &Contestant,
        ready: &'a Ready,
        file: &BenchFile,
        options: &Options,
        progress: &Progress,
    ) -> Timing<'a> {
        let runs = match (options.runs, contestant.runs) {
            (Some(asked), Some(own)) => asked.min(own),
            (asked, own) => asked.or(own).unwrap_or(file.runs),
        };
        let warmup = contestant.warmup.unwrap_or(file.warmup);
        Timing {
            ready,
            warmup,
            runs,
            timeout: Duration::from_secs(contestant.timeout.unwrap_or(file.timeout)),
            started: 0,
            walls: Vec::new(),
            rss_mib: Vec::new(),
            failure: None,
            bar: progress.runs(contestant.name(), warmup, runs),
        }
    }

    fn pending(&self) -> bool {
        self.failure.is_none() && self.started < self.warmup + self.runs
    }

    /// One run: a warm-up run is checked but not kept. The first failing run ends the
    /// contestant with its error.
    fn run_once(&mut self, setup: &Setup) {
        let index = self.started;
        self.started += 1;
        let before = self.ready.before_run();
        let result = run_timed(&self.ready.command(index), self.timeout, &setup.logs());
        let settled = self.ready.after_run(index, &before, self.timeout);
        let done = match result {
            Err(e) => return self.fail(e.to_string()),
            Ok(done) if !done.succeeded() => return self.fail(done.failure()),
            Ok(done) => done,
        };
        if let Err(left) = settled {
            return self.fail(left);
        }
        if let Some(expected) = &self.ready.expect_stdout
            && !done.stdout.contains(expected.as_str())
        {
            let last = done.stdout.lines().rev().find_map(first_line);
            return self.fail(format!(
                "no {expected:?} in its output; last line: {last:?}"
            ));
        }
        self.bar.tick(done.wall);
        if index >= self.warmup {
            self.walls.push(done.wall);
            self.rss_mib.push(done.max_rss_kib as f64 / 1024.0);
        }
        if !self.pending() {
            let summary = match Summary::of_millis(&self.walls) {
                Some(t) => format!(
                    "median {} ms (min {}, max {})",
                    format_ms(t.median),
                    format_ms(t.min),
                    format_ms(t.max)
                ),
                None => "no timed runs".into(),
            };
            self.bar.finish(&summary);
        }
    }

    fn fail(&mut self, failure: String) {
        self.bar.finish(&format!("FAILED: {failure}"));
        self.failure = Some(failure);
    }

    fn outcome(self) -> Outcome {
        if let Some(failure) = self.failure {
            return Outcome::Failed(failure);
        }
        match (Summary::of_millis(&self.walls), Summary::of(&self.rss_mib)) {
            (Some(time), Some(rss)) => Outcome::Measured(Measurement {
                time,
                rss_mib: rss.median,
                runs: self.runs,
                warmup: self.warmup,
            }),
            _ => Outcome::Failed("no timed runs".into()),
        }
    }
}
// ANCHOR_END: time

/// The smallest peak RSS the launcher can report: that of the static probe, a program that does
/// almost nothing. Contestants near it are mostly measuring the launcher.
fn launcher_floor(setup: &Setup) -> Option<f64> {
    let mut probe = Command::new(crate::fixtures::probe_path());
    probe.args(["exit", "0"]);
    let done = run_timed(&probe, Duration::from_secs(10), &setup.logs()).ok()?;
    done.succeeded().then(|| done.max_rss_kib as f64 / 1024.0)
}

fn write_outputs(results: &Results, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let report = out.join("report.md");
    let chart = out.join("startup.svg");
    std::fs::write(&report, results.markdown("startup.svg"))
        .with_context(|| format!("write {}", report.display()))?;
    std::fs::write(&chart, results.svg()).with_context(|| format!("write {}", chart.display()))?;
    println!("{}", results.table());
    if !results.memory.is_empty() {
        println!("{}", results.memory_table());
    }
    for line in results.target_lines() {
        println!("{line}");
    }
    println!(
        "\nreport: {}\nchart:  {}",
        report.display(),
        chart.display()
    );
    Ok(())
}

/// Scratch space for one run, `OUT/work-PID`: removed at the end, also when the bench fails.
struct WorkDir {
    path: PathBuf,
    removed: bool,
}

impl WorkDir {
    fn create(out: &Path) -> anyhow::Result<WorkDir> {
        remove_stale(out);
        let path = out.join(format!("work-{}", std::process::id()));
        let logs = path.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))?;
        Ok(WorkDir {
            path,
            removed: false,
        })
    }

    /// Removes it; returns what could not be removed.
    fn finish(mut self) -> Vec<String> {
        self.removed = true;
        remove_unless_mounted(&self.path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.removed {
            for warning in remove_unless_mounted(&self.path) {
                eprintln!("bench: {warning}");
            }
        }
    }
}

/// Work directories of earlier runs that died (their process is gone).
fn remove_stale(out: &Path) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("work-") else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = remove_unless_mounted(&entry.path());
        }
    }
}

/// Removes `dir`, unless something is mounted under it: deleting through a mount would reach
/// into whatever is mounted there.
fn remove_unless_mounted(dir: &Path) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let under: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .filter(|target| Path::new(target).starts_with(dir))
        .collect();
    if !under.is_empty() {
        return vec![format!(
            "{} kept: still mounted under it: {}",
            dir.display(),
            under.join(", ")
        )];
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            vec![format!("remove {}: {e}", dir.display())]
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_by_substring_and_names_the_choices_when_nothing_matches() {
        let file = BenchFile::load(&crate::labs_dir().join("bench.toml")).unwrap();
        let (all, memory) = select(&file, &[]).unwrap();
        assert_eq!(all.len(), file.contestants.len());
        assert_eq!(memory.len(), file.memory.len());
        let (runtimes, memory) = select(&file, &["runc".into()]).unwrap();
        assert!(runtimes.iter().all(|c| c.name().contains("runc")));
        assert!(memory.is_empty());
        let (stage_07, memory) = select(&file, &["07".into()]).unwrap();
        assert_eq!(stage_07.len(), 3, "none, bridge, detached");
        assert_eq!(memory.len(), 1, "the monitor's memory");
        let message = select(&file, &["nothing-like-this".into()])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("the contestants are 01-chroot"),
            "{message}"
        );
    }

    #[test]
    fn a_work_directory_is_removed_at_the_end() {
        let out = tempfile::tempdir().unwrap();
        let work = WorkDir::create(out.path()).unwrap();
        let path = work.path.clone();
        std::fs::write(path.join("logs/stdout"), "x").unwrap();
        assert!(work.finish().is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn the_target_directory_holds_the_fixtures() {
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert!(Path::new(env!("LAB_FIXTURES")).starts_with(target_dir()));
        }
    }
}
