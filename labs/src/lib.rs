//! # The lab harness
//!
//! Each stage of skiff has a lab: a TOML file of checks (`labs/NN-name.toml`) that observe what a
//! container engine at that stage must do. The harness runs a lab against any binary that takes
//! the stage's flags, so a learner can check their own engine with the same checks skiff passes.
//!
//! - `cargo test -p namespaces` runs labs 01 and 02 against the `namespaces` binary, each check as
//!   its own test (`cargo test -p namespaces pid` runs the checks whose name holds `pid`);
//! - `LAB_BIN=/path/to/yours cargo test -p namespaces` runs them against your binary;
//! - `cargo run -p labs -- check 02 --bin PATH` prints a readable report;
//! - `cargo run --release -p labs -- bench` times container startup ([`bench`]).
//!
//! A stage's test file is one line:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     labs::run_tests(1, env!("CARGO_BIN_EXE_chroot"))
//! }
//! ```
//!
//! Randomness comes from `LAB_SEED` (printed on every failure), so a hard-coded answer fails
//! and a failure can be replayed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Trial};

pub mod bench;
pub mod contract;
pub mod fixtures;
pub mod images;
pub mod lab;
pub mod leaks;
pub mod runner;
pub mod starter;

pub use fixtures::{Fixtures, fixtures};
pub use lab::{Check, Lab, LabError};
pub use runner::{Applies, Context, Target, run_check};

/// The directory that holds the lab files.
pub fn labs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every lab file in `labs_dir()`, sorted by name (and so by stage).
pub fn lab_files() -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(labs_dir())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.ends_with(".toml") && name.starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Placeholders that fixtures of later stages add (checked when a lab file loads).
pub const STAGE_PLACEHOLDERS: &[&str] = images::PLACEHOLDERS;

/// Loads the lab of `stage` and every lab it requires, earliest first.
pub fn labs_for_stage(stage: u32) -> Result<Vec<Lab>, String> {
    let files = lab_files().map_err(|e| format!("{}: {e}", labs_dir().display()))?;
    let all: Vec<Lab> = files
        .iter()
        .map(|path| Lab::load(path, STAGE_PLACEHOLDERS).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let main = all
        .iter()
        .find(|lab| lab.stage == stage)
        .ok_or_else(|| format!("no lab for stage {stage:02} in {}", labs_dir().display()))?;
    let mut wanted = vec![main.name.clone()];
    let mut index = 0;
    while index < wanted.len() {
        let lab = all
            .iter()
            .find(|lab| lab.name == wanted[index])
            .ok_or_else(|| format!("lab {:?} requires a lab that does not exist", wanted[index]))?;
        for required in &lab.requires {
            if !wanted.contains(required) {
                wanted.push(required.clone());
            }
        }
        index += 1;
    }
    let mut labs: Vec<Lab> = all
        .into_iter()
        .filter(|l| wanted.contains(&l.name))
        .collect();
    labs.sort_by_key(|l| l.stage);
    Ok(labs)
}

/// The seed for this run: `LAB_SEED`, or a fresh one.
pub fn seed() -> u64 {
    std::env::var("LAB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..1_000_000))
}

/// The binary to test: `LAB_BIN` when set, else the stage's own.
pub fn target_bin(default: &str) -> PathBuf {
    std::env::var_os("LAB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// One trial per check; `final` checks go in the second list.
pub fn trials(ctx: &Context, labs: &[Lab], prefix: &str) -> (Vec<Trial>, Vec<Trial>) {
    let mut normal = Vec::new();
    let mut last = Vec::new();
    for lab in labs {
        for check in &lab.checks {
            let name = format!("{prefix}{}::{}", lab.name, check.name);
            let applies = check.applies(ctx.target.stage);
            let (ctx, lab_, check_) = (ctx.clone(), lab.clone(), check.clone());
            let trial = Trial::test(name, move || {
                run_check(&ctx, &lab_, &check_).map_err(Into::into)
            })
            .with_ignored_flag(applies.skipped());
            if check.last {
                last.push(trial);
            } else {
                normal.push(trial);
            }
        }
    }
    (normal, last)
}

/// The whole test run of a stage: its lab and the labs it requires, against the stage binary
/// (or `LAB_BIN`), each check a named test; `final` checks after all others.
pub fn run_tests(stage: u32, default_bin: &str) -> ExitCode {
    let args = Arguments::from_args();
    let seed = seed();
    let target = Target {
        stage,
        bin: target_bin(default_bin),
        env: Vec::new(),
    };
    let setup = labs_for_stage(stage).and_then(|labs| {
        let fixtures = fixtures().map_err(|e| format!("{e:#}"))?.clone();
        Ok((labs, fixtures))
    });
    let (labs, fixtures) = match setup {
        Ok(found) => found,
        Err(message) => {
            eprintln!("lab setup failed: {message}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "labs {} against {} (stage {stage:02}), LAB_SEED={seed}",
        labs.iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        target.bin.display()
    );
    let ctx = Context {
        target,
        fixtures,
        seed,
    };
    let (normal, last) = trials(&ctx, &labs, "");
    run_two_phases(&args, normal, last)
}

/// Runs the checks, then the `final` ones one at a time: a final check compares the host before
/// and after its last command, and another check running meanwhile would show in the difference.
pub fn run_two_phases(args: &Arguments, normal: Vec<Trial>, last: Vec<Trial>) -> ExitCode {
    let first = libtest_mimic::run(args, normal);
    let mut one_by_one = args.clone();
    one_by_one.test_threads = Some(1);
    let second = libtest_mimic::run(&one_by_one, last);
    if first.has_failed() || second.has_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the labs of `stage` against `bin` one check at a time, printing a report a learner can
/// read: each check, pass or fail, what it teaches, and on failure what was expected and what
/// came back. Returns whether everything passed.
pub fn report(stage: u32, bin: &Path, filter: Option<&str>) -> Result<bool, String> {
    let labs = labs_for_stage(stage)?;
    let fixtures = fixtures().map_err(|e| format!("{e:#}"))?.clone();
    let seed = seed();
    let ctx = Context {
        target: Target {
            stage,
            bin: bin.to_path_buf(),
            env: Vec::new(),
        },
        fixtures,
        seed,
    };
    println!(
        "Checking {} as a stage {stage:02} engine (LAB_SEED={seed})",
        bin.display()
    );
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut ordered: Vec<(&Lab, &Check)> = labs
        .iter()
        .flat_map(|lab| lab.checks.iter().map(move |c| (lab, c)))
        .collect();
    ordered.sort_by_key(|(_, c)| c.last);
    let mut current = "";
    for (lab, check) in ordered {
        if filter.is_some_and(|f| !check.name.contains(f)) {
            continue;
        }
        if lab.name != current {
            println!("\n{}: {}", lab.name, lab.title);
            current = &lab.name;
        }
        let applies = check.applies(stage);
        if applies == Applies::Unsupported {
            skipped += 1;
            println!(
                "  skip  {} (this kernel has no {}: scripts/test-in-vm runs it in a VM)",
                check.name,
                check.kernel_lacks().unwrap_or_default()
            );
            continue;
        }
        if applies.skipped() {
            skipped += 1;
            let (word, bound) = match applies {
                Applies::Superseded => ("until", check.until),
                _ => ("from", check.since),
            };
            println!(
                "  skip  {} ({word} stage {:02})",
                check.name,
                bound.unwrap_or(0)
            );
            continue;
        }
        if check.needs_ipv6 && !std::path::Path::new("/proc/sys/net/ipv6").exists() {
            skipped += 1;
            println!(
                "  skip  {} (no IPv6 in this kernel: /proc/sys/net/ipv6 is missing)",
                check.name
            );
            continue;
        }
        let result = run_check(&ctx, lab, check);
        let closed = if applies == Applies::Closed {
            format!(
                " [closed in stage {:02}: must fail]",
                check.closed_in.unwrap_or(0)
            )
        } else {
            String::new()
        };
        match result {
            Ok(()) => {
                passed += 1;
                println!("  PASS  {}{closed}\n        {}", check.name, check.teaches);
            }
            Err(message) => {
                failed += 1;
                println!("  FAIL  {}{closed}\n        {}", check.name, check.teaches);
                for line in message.lines() {
                    println!("        | {line}");
                }
            }
        }
    }
    println!("\n{passed} passed, {failed} failed, {skipped} not applicable at this stage");
    Ok(failed == 0)
}
