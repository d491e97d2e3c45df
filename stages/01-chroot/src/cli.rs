//! Command-line pieces every stage binary shares: the process flags (`-w`, `-e`), and the way a
//! binary parses its arguments and ends, with Docker's exit codes.
//!
//! Each later stage flattens [`ProcessArgs`] into its own `run` arguments, so every binary accepts
//! every flag of the stages before it.

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::error::LaunchError;
use crate::prepared::Prepared;
use crate::process::Process;
use crate::root::ChangeRoot;

/// The exit code for the engine's own failures, bad flags included (Docker's code).
pub const EXIT_ENGINE: i32 = 125;

// ANCHOR: process_args
/// Flags that shape the process: where it starts and what its environment holds.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct ProcessArgs {
    /// Working directory inside the container (must exist there)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// Set an environment variable (KEY=VALUE, or KEY to copy the engine's value)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
}
// ANCHOR_END: process_args

// ANCHOR: run_args
/// `run`'s flags at stage 01.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
#[group(id = "chroot_run")]
pub struct RunArgs {
    /// The directory that becomes the command's root
    #[arg(long, value_name = "DIR")]
    pub rootfs: PathBuf,

    /// `-w`, `-e`.
    #[command(flatten)]
    pub process: ProcessArgs,

    /// The command to run and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}
// ANCHOR_END: run_args

// ANCHOR: prepare
impl RunArgs {
    /// The process these flags describe.
    pub fn process(&self) -> Result<Process, LaunchError> {
        let mut process = Process::new(self.command.clone());
        self.process.apply(&mut process)?;
        Ok(process)
    }

    /// Stage 01's container: the process, with its root changed to `--rootfs`.
    pub fn prepare(&self) -> Result<Prepared, LaunchError> {
        let mut prepared = Prepared::new(self.process()?);
        prepared.add(ChangeRoot::new(&self.rootfs));
        Ok(prepared)
    }
}
// ANCHOR_END: prepare

impl ProcessArgs {
    /// Applies the flags to `process`.
    pub fn apply(&self, process: &mut Process) -> Result<(), LaunchError> {
        for arg in &self.env {
            process.apply_env_arg(arg)?;
        }
        if let Some(dir) = &self.workdir {
            process.cwd = dir.clone();
        }
        Ok(())
    }
}

/// Parses the command line; on a usage error prints clap's message and exits 125 (help and
/// version exit 0), as `docker run --bogus` does.
pub fn parse<T: Parser>() -> T {
    match T::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_ENGINE } else { 0 };
            let _ = err.print();
            std::process::exit(code);
        }
    }
}

/// Ends the engine: with the command's code on success, or with the error printed as one line
/// (`name: what failed: why: what to do`) and its exit code (125, 126 or 127).
pub fn finish(name: &str, result: anyhow::Result<i32>) -> ! {
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("{name}: {}", one_line(&err));
            let code = err
                .chain()
                .find_map(|cause| cause.downcast_ref::<LaunchError>())
                .map_or(EXIT_ENGINE, LaunchError::exit_code);
            std::process::exit(code);
        }
    }
}

/// The error and its causes on one line, `what: why: why`. A cause whose words the message
/// already holds is not repeated (many errors print their source themselves).
pub fn one_line(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

// ANCHOR: launch_and_wait
/// Launches the container, forwarding the signals the engine gets to it, waits for it, prints
/// what the features noted, and returns the exit code: the last lines of every stage's `run`.
pub fn launch_and_wait(name: &str, prepared: &mut Prepared) -> anyhow::Result<i32> {
    use anyhow::Context;
    let forwarder = crate::signals::Forwarder::install().context("catch signals to forward")?;
    let exit = prepared.spawn()?.wait_forwarding(&forwarder)?;
    report_exit(name, &exit);
    Ok(exit.code())
}
// ANCHOR_END: launch_and_wait

/// Prints what features noted about the end of the command and any cleanup warnings.
pub fn report_exit(name: &str, exit: &crate::Exit) {
    for note in &exit.notes {
        eprintln!("{name}: {note}");
    }
    for warning in &exit.warnings {
        eprintln!("{name}: warning: {warning}");
    }
}
