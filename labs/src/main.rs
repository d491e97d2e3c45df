//! `labs`: run a stage's lab against any engine binary and print a readable report.
//!
//! ```text
//! cargo run -p labs -- list
//! cargo run -p labs -- check 01 --bin target/debug/chroot
//! cargo run -p labs -- check 02 --bin ./my-engine pid
//! cargo run --release -p labs -- bench
//! cargo run -p labs -- start 02 ~/my-skiff-02
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The skiff lab harness.
#[derive(Parser)]
#[command(name = "labs", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the labs and their checks
    List,
    /// Build the fixtures (if needed) and print the path of the lab rootfs
    Fixtures,
    /// List what skiff left on this host (mounts, cgroups, links, rules, processes); exit 1 if any
    Leaks,
    /// Run a stage's lab (and the labs it requires) against a binary
    Check {
        /// The stage number: 1 for 01-chroot, 2 for 02-namespaces...
        stage: u32,
        /// The engine binary to check
        #[arg(long, value_name = "PATH")]
        bin: PathBuf,
        /// Only the checks whose name contains this
        filter: Option<String>,
    },
    /// Time container startup: each stage, the unshare floor, runc, crun, docker, podman and a
    /// VM, as labs/bench.toml lists them; writes target/bench/report.md and startup.svg
    Bench(labs::bench::Options),
    /// Write a starter crate for stage NN into DIR: the previous stage as a library, the command
    /// line wired, and the stage's own pieces left as todo!() for you to write
    Start {
        /// The stage number: 1 for 01-chroot, 2 for 02-namespaces...
        stage: u32,
        /// A new (or empty) directory for the crate
        dir: PathBuf,
        /// The skiff checkout the starter depends on (default: the one this harness was built from)
        #[arg(long, value_name = "DIR", default_value_os_t = labs::starter::default_skiff())]
        skiff: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::List => list(),
        Command::Fixtures => match labs::fixtures() {
            Ok(fixtures) => {
                println!("{}", fixtures.rootfs.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("labs: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Leaks => {
            let left = labs::leaks::scan(&[]);
            if left.is_empty() {
                println!("nothing of skiff's is left on this host");
                ExitCode::SUCCESS
            } else {
                println!("{}", left.join("\n"));
                ExitCode::FAILURE
            }
        }
        Command::Bench(options) => match labs::bench::run(&options) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("labs: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Start { stage, dir, skiff } => start(stage, &dir, &skiff),
        Command::Check { stage, bin, filter } => {
            let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
            match labs::report(stage, &bin, filter.as_deref()) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(message) => {
                    eprintln!("labs: {message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn list() -> ExitCode {
    let files = match labs::lab_files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("labs: {e}");
            return ExitCode::FAILURE;
        }
    };
    for path in files {
        match labs::Lab::load(&path, labs::STAGE_PLACEHOLDERS) {
            Ok(lab) => {
                println!("{} (stage {:02}): {}", lab.name, lab.stage, lab.title);
                for check in &lab.checks {
                    println!("  {:<32} {}", check.name, check.teaches);
                }
            }
            Err(e) => {
                eprintln!("labs: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn start(stage: u32, dir: &std::path::Path, skiff: &std::path::Path) -> ExitCode {
    match labs::starter::start(stage, dir, skiff) {
        Ok(files) => {
            for file in &files {
                println!("  {}", dir.join(file).display());
            }
            let name = labs::starter::package_name(stage);
            println!(
                "\nA stage {stage:02} starter is in {dir}. Build it and run the labs against it:\n\n  \
                 cd {dir} && cargo build\n  \
                 sudo {labs} check {stage} --bin ./target/debug/{name}\n\n\
                 Then write the todo!() pieces in the order of the chapter's \"Build it yourself\".",
                dir = dir.display(),
                labs = std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "labs".into()),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("labs: {e}");
            ExitCode::FAILURE
        }
    }
}
