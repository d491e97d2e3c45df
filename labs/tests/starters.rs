//! The starters keep their promise: `labs start NN` writes a crate that builds untouched, passes
//! every lab before NN, and fails lab NN with a note that names the missing piece.
//!
//! One trial per stage: write the starter into a temporary directory, `cargo build --offline` it
//! into the workspace's own target directory (a starter pins the workspace's versions and copies
//! its Cargo.lock, so the crates it depends on are mostly built already; what differs, such as a
//! crate built with fewer features, is built once for all starters), run the labs before NN
//! (checked as a stage NN-1 engine: 01 to 03 in full, from 04 on the checks [`EARLIER_SUBSET`]
//! names), then the checks of lab NN listed in [`OWN_CHECKS`], each of which must fail, those
//! marked so with `skiff starter: not written yet`. `book/src/labs.md` says what this proves.

use std::path::Path;
use std::process::{Command, ExitCode};

use labs::{Applies, Check, Context, Lab, Target, run_check};
use libtest_mimic::{Arguments, Trial};

/// The note a starter prints when a run reaches a piece still `todo!()`.
const NOTE: &str = "skiff starter: not written yet";

/// For each stage, checks of its own lab that the untouched starter must fail, and whether the
/// failure must carry the note (a check that asks for nothing of the stage fails for its own
/// reason: the starter quietly runs as the previous stage did).
const OWN_CHECKS: &[(u32, &[(&str, bool)])] = &[
    (
        1,
        &[
            ("stdout-passes-through", true),
            ("exit-code-passes-back", true),
        ],
    ),
    (
        2,
        &[("hostname-is-private", true), ("command-is-pid-1", false)],
    ),
    (
        3,
        &[
            ("memory-within-limit", true),
            ("pids-limit-contains-fork-bomb", true),
        ],
    ),
    (
        4,
        &[
            ("hello-world-offline", true),
            ("load-and-list", true),
            ("run-an-image", true),
        ],
    ),
    (
        5,
        &[
            ("published-port-reaches-the-container", true),
            ("network-ls", true),
            ("default-bridge-gives-eth0", false),
        ],
    ),
    (
        6,
        &[
            ("named-volume-outlives-its-container", true),
            ("tmpfs-is-memory-with-safe-defaults", true),
            ("relative-target-is-an-error", true),
        ],
    ),
    (
        7,
        &[
            ("run-d-returns-while-the-container-runs", true),
            ("rm-deletes-a-stopped-container", true),
        ],
    ),
];

/// Labs 01 to 03 take seconds and run in full; from lab 04 on, an earlier lab runs only these
/// checks: its subject's main paths (an image run, its layers, its commands) and its leak check.
const EARLIER_SUBSET: &[(u32, &[&str])] = &[
    (
        4,
        &[
            "load-and-list",
            "run-an-image",
            "every-layer-is-visible",
            "whiteout-deletes",
            "writes-never-reach-the-image",
            "entrypoint-and-cmd",
            "nothing-left-on-host",
        ],
    ),
    (
        5,
        &[
            "default-bridge-gives-eth0",
            "names-on-a-user-network",
            "published-port-reaches-the-container",
            "network-ls",
            "nothing-left-on-host",
        ],
    ),
    (
        6,
        &[
            "named-volume-outlives-its-container",
            "bind-mount-shares-a-host-directory",
            "tmpfs-is-memory-with-safe-defaults",
            "volume-ls-and-inspect",
            "nothing-left-on-host",
        ],
    ),
];

/// Whether the starter test runs `check` of `lab` as an earlier lab. `STARTERS_FULL=1` runs
/// every check of every earlier lab (about twenty minutes on two cores, too long for each run of
/// the test command; `book/src/labs.md` says when it was last run so).
fn earlier(lab: &Lab, check: &Check) -> bool {
    lab.stage <= 3
        || std::env::var_os("STARTERS_FULL").is_some_and(|v| v == "1")
        || EARLIER_SUBSET
            .iter()
            .any(|(stage, names)| *stage == lab.stage && names.contains(&check.name.as_str()))
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // The starters share one target directory: building two at once only waits on its lock.
    args.test_threads = Some(1);
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("starters: skipped, the labs need root (run as root to build and check them)");
    }
    let trials = labs::starter::STAGES
        .map(|stage| {
            Trial::test(format!("starter-{stage:02}"), move || {
                check_starter(stage).map_err(Into::into)
            })
            .with_ignored_flag(!root)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn check_starter(stage: u32) -> Result<(), String> {
    // CARGO_TARGET_TMPDIR is <target>/tmp: the starters build in <target> itself.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().unwrap_or(tmp).to_path_buf();
    let scratch = tempfile::Builder::new()
        .prefix("skiff-starter-")
        .tempdir_in(tmp)
        .map_err(|e| format!("create a directory in {}: {e}", tmp.display()))?;
    let dir = scratch.path().join(format!("my-skiff-{stage:02}"));
    run(Command::new(env!("CARGO_BIN_EXE_labs"))
        .arg("start")
        .arg(stage.to_string())
        .arg(&dir))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // A learner starts from it: it builds without a warning and is formatted as rustfmt wants.
    let built = run(Command::new(&cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target))?;
    if built.contains("warning") {
        return Err(format!("starter {stage:02} builds with warnings:\n{built}"));
    }
    run(Command::new(&cargo)
        .args(["fmt", "--check"])
        .current_dir(&dir))?;
    let bin = target
        .join("debug")
        .join(labs::starter::package_name(stage));
    let fixtures = labs::fixtures().map_err(|e| format!("{e:#}"))?.clone();
    let seed = labs::seed();
    let ctx = |stage| Context {
        target: Target {
            stage,
            bin: bin.clone(),
            env: Vec::new(),
        },
        fixtures: fixtures.clone(),
        seed,
    };
    let mut problems = Vec::new();
    // The labs before NN, as a stage NN-1 engine: 01 to 03 in full, later ones in part.
    if stage > 1 {
        for (lab, check, result) in run_labs(&ctx(stage - 1), stage - 1, earlier)? {
            if let Err(e) = result {
                problems.push(format!("lab {lab}, check {check} failed:\n{e}"));
            }
        }
    }
    // Lab NN: the listed checks fail, and say why.
    let own = OWN_CHECKS
        .iter()
        .find(|(s, _)| *s == stage)
        .map(|(_, checks)| *checks)
        .unwrap_or_default();
    let results = run_labs(&ctx(stage), stage, |lab, check| {
        lab.stage == stage && own.iter().any(|(name, _)| *name == check.name)
    })?;
    for (name, noted) in own {
        match results.iter().find(|(_, check, _)| check == name) {
            None => problems.push(format!("lab {stage:02} has no check {name:?}")),
            Some((_, _, Ok(()))) => problems.push(format!(
                "check {name} passed against the untouched starter {stage:02}"
            )),
            Some((_, _, Err(e))) if *noted && !e.contains(NOTE) => problems.push(format!(
                "check {name} failed without naming the missing piece ({NOTE:?}):\n{e}"
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// One check's outcome: its lab, its name, and what came back.
type Outcome = (String, String, Result<(), String>);

/// Runs the checks of `stage`'s labs (its own and those it requires) that `wanted` picks and that
/// apply at `ctx`'s stage on this host, the `final` ones last: (lab, check, outcome).
fn run_labs(
    ctx: &Context,
    stage: u32,
    wanted: impl Fn(&Lab, &Check) -> bool,
) -> Result<Vec<Outcome>, String> {
    let labs = labs::labs_for_stage(stage)?;
    let mut ordered: Vec<(&Lab, &Check)> = labs
        .iter()
        .flat_map(|lab| lab.checks.iter().map(move |check| (lab, check)))
        .filter(|(lab, check)| wanted(lab, check))
        .filter(|(_, check)| {
            let applies = check.applies(ctx.target.stage);
            !applies.skipped()
                && applies != Applies::Unsupported
                && (!check.needs_ipv6 || Path::new("/proc/sys/net/ipv6").exists())
        })
        .collect();
    ordered.sort_by_key(|(_, check)| check.last);
    Ok(ordered
        .into_iter()
        .map(|(lab, check)| {
            (
                lab.name.clone(),
                check.name.clone(),
                run_check(ctx, lab, check),
            )
        })
        .collect())
}

/// Runs `command`: its stderr, or its output in the error when it fails.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stderr).into_owned())
    } else {
        Err(format!(
            "{command:?}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
