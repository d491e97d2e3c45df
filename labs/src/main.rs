//! `labs`: run a stage's lab against any engine binary and print a readable report.
//!
//! ```text
//! cargo run -p labs -- list
//! cargo run -p labs -- check 01 --bin target/debug/chroot
//! cargo run -p labs -- check 02 --bin ./my-engine pid
//! cargo run --release -p labs -- bench
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
