//! The harness tests itself: every lab runs against the impostor, a binary that takes the same
//! flags but runs the command on the host without isolating it. A check marked `isolation`
//! (or closed by the stage) must fail there, or it would pass against an engine that isolates
//! nothing; every other check must pass, or the impostor is not a faithful stand-in.

use std::process::ExitCode;

use labs::{Applies, Context, Target, run_check};
use libtest_mimic::{Arguments, Trial};

/// The engine binary of each stage, by stage number.
const STAGE_BINARIES: [&str; 7] = [
    "chroot",
    "namespaces",
    "cgroups",
    "images",
    "networking",
    "volumes",
    "skiff",
];

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let fixtures = match labs::fixtures() {
        Ok(f) => f.clone(),
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    let seed = labs::seed();
    eprintln!("impostor self-test, LAB_SEED={seed}");
    let files = labs::lab_files().expect("the labs directory is readable");
    let mut trials = Vec::new();
    let mut last = Vec::new();
    for path in files {
        let lab = labs::Lab::load(&path, labs::STAGE_PLACEHOLDERS).expect("lab files parse");
        let stage = lab.stage;
        let labs = labs::labs_for_stage(stage).expect("required labs exist");
        // From stage 04 the impostor hands image management to the real engine of that stage
        // (built next to the impostor by `cargo test --workspace`).
        if stage >= 4 {
            let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_impostor"))
                .parent()
                .map(|d| d.to_path_buf());
            let engine = bin_dir.map(|d| d.join(STAGE_BINARIES[(stage - 1) as usize]));
            match engine.filter(|e| e.exists()) {
                // SAFETY: set before any trial thread starts; nothing else reads the environment.
                Some(engine) => unsafe { std::env::set_var("IMPOSTOR_DELEGATE", engine) },
                None => {
                    eprintln!(
                        "skipping stage {stage:02}: its engine binary is not built (run cargo test --workspace)"
                    );
                    continue;
                }
            }
        }
        let ctx = Context {
            target: Target {
                stage,
                bin: env!("CARGO_BIN_EXE_impostor").into(),
                env: Vec::new(),
            },
            fixtures: fixtures.clone(),
            seed,
        };
        for lab in labs {
            for check in &lab.checks {
                let applies = check.applies(stage);
                let must_fail = check.isolation || applies == Applies::Closed;
                let name = format!("stage{stage:02}::{}::{}", lab.name, check.name);
                let list = if check.last { &mut last } else { &mut trials };
                let (ctx, lab, check) = (ctx.clone(), lab.clone(), check.clone());
                list.push(
                    Trial::test(name, move || {
                        match (must_fail, run_check(&ctx, &lab, &check)) {
                            (true, Ok(())) => Err("this check passed against the impostor, which \
                            isolates nothing: it cannot tell a container from a host process"
                                .into()),
                            (false, Err(e)) => Err(format!(
                                "this check does not test isolation, yet it failed against the \
                             impostor: the check or the impostor is wrong\n{e}"
                            )
                            .into()),
                            _ => Ok(()),
                        }
                    })
                    .with_ignored_flag(applies.skipped()),
                );
            }
        }
    }
    defence_trials(&fixtures, seed, &mut last);
    labs::run_two_phases(&args, trials, last)
}

/// A check that names the defence it proves must fail against the real engine of its stage with
/// that one defence switched off: otherwise it would pass against an engine without it.
fn defence_trials(fixtures: &labs::Fixtures, seed: u64, last: &mut Vec<Trial>) {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_impostor"))
        .parent()
        .map(|d| d.to_path_buf())
        .unwrap_or_default();
    let files = labs::lab_files().expect("the labs directory is readable");
    for path in files {
        let lab = labs::Lab::load(&path, labs::STAGE_PLACEHOLDERS).expect("lab files parse");
        for check in &lab.checks {
            let Some(defence) = check.defence.clone() else {
                continue;
            };
            // The first stage the check runs at: its lab's, or later with `since`.
            let stage = check.since.unwrap_or(lab.stage).max(lab.stage);
            let engine = bin_dir.join(STAGE_BINARIES[(stage - 1) as usize]);
            let name = format!("defence::{defence}::{}::{}", lab.name, check.name);
            // With its defence off, the engine may do on the host what the check guards against
            // (a hostile tarball writes its /tmp/skiff-lab-evil-* file) until the check cleans up.
            // Another check looking at the host meanwhile (the same check against the impostor)
            // would see it: so the trials run last, one at a time.
            if !engine.exists() {
                last.push(Trial::test(name, || Ok(())).with_ignored_flag(true));
                continue;
            }
            let ctx = Context {
                target: Target {
                    stage,
                    bin: engine,
                    env: vec![("SKIFF_UNSAFE_DISABLE".into(), defence.clone())],
                },
                fixtures: fixtures.clone(),
                seed,
            };
            // What the failure must say, when the check states it: failing for another reason
            // (a crash, a timeout) proves nothing about the defence.
            let says = check
                .defence_says
                .as_deref()
                .map(|r| regex::Regex::new(r).expect("lab files validate defence_says"));
            let (lab, check) = (lab.clone(), check.clone());
            last.push(Trial::test(name, move || {
                match run_check(&ctx, &lab, &check) {
                    Ok(()) => Err(format!(
                        "this check passed against the engine with its defence `{defence}` \
                         switched off: it does not prove that defence"
                    )
                    .into()),
                    Err(report) => match &says {
                        Some(says) if !says.is_match(&report) => Err(format!(
                            "without its defence `{defence}` this check failed, but not for the \
                             reason it states: its failure does not match defence_says = \
                             {:?}\n{report}",
                            says.as_str()
                        )
                        .into()),
                        _ => Ok(()),
                    },
                }
            }));
        }
    }
}
