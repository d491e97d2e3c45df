//! `my-skiff-01`: your engine at stage 01. Runs a command with another directory as its root,
//! passing stdio, the environment you give it and its exit status through.
//!
//! ```text
//! my-skiff-01 run --rootfs DIR [-w DIR] [-e KEY=VALUE]... [--] COMMAND [ARG...]
//! ```
//!
//! The command line is wired; the launch is yours, in `launch.rs` (book: chapter 1).

mod launch;
mod starter;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The exit code for the engine's own failures, bad flags included (Docker's).
const EXIT_ENGINE: i32 = 125;

/// Your engine, stage 01: run a command in another root directory.
#[derive(Parser)]
#[command(name = "my-skiff-01", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command with DIR as its root directory
    Run(RunArgs),
}

/// `run`'s flags at stage 01.
#[derive(Args)]
struct RunArgs {
    /// The directory that becomes the command's root
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,

    /// Working directory inside the container (must exist there)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,

    /// Set an environment variable (KEY=VALUE, or KEY to copy the engine's value)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// The command to run and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn main() {
    starter::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `run --bogus` is the engine's failure (125); --help and --version are not.
            let code = if err.use_stderr() { EXIT_ENGINE } else { 0 };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    let result = match starter::written(|| match cli.command {
        Command::Run(args) => run(args),
    }) {
        Ok(result) => result,
        Err(missing) => Err(missing.into()),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("my-skiff-01: {err:#}");
            let code = err
                .downcast_ref::<launch::CannotRun>()
                .map_or(EXIT_ENGINE, |e| e.code);
            std::process::exit(code);
        }
    }
}

/// The launch, in the order the kernel needs it: check the root, describe the process, start it
/// in the root, wait for it and pass its status back.
fn run(args: RunArgs) -> anyhow::Result<i32> {
    launch::check_rootfs(&args.rootfs)?;
    let process = launch::Process {
        command: args.command,
        env: launch::environment(&args.env)?,
        workdir: args.workdir.unwrap_or_else(|| "/".into()),
    };
    let child = launch::spawn(&args.rootfs, &process)?;
    launch::wait(child)
}
