//! Shell completions and man pages, generated from the same clap definitions that parse the
//! command line, so they can never disagree with it.
//!
//! `skiff completion bash` prints a script for bash (zsh, fish, elvish and powershell too) that
//! the shell sources: `skiff completion bash > /etc/bash_completion.d/skiff`. `skiff man DIR`
//! writes a man page per command, `skiff.1`, `skiff-run.1`, `skiff-image-ls.1`..., as
//! `docker-run(1)` is named: `skiff man /usr/local/share/man/man1 && mandb`. See the clap_complete
//! and clap_mangen crates, and man-pages(7) for the sections of a page.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

/// `completion`'s arguments.
#[derive(Args)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// `man`'s arguments.
#[derive(Args)]
pub struct ManArgs {
    /// Where to write the pages (a man1 directory)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Prints the completion script for `shell`.
pub fn completion(args: &CompletionArgs) -> anyhow::Result<i32> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "skiff", &mut std::io::stdout());
    Ok(0)
}

// ANCHOR: man
/// Writes `skiff.1` and a page for every visible command under it, named by its path.
pub fn man(args: &ManArgs) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let mut command = Cli::command();
    command.build();
    let written = write_pages(&command, "skiff", &args.dir)?;
    eprintln!("{written} pages written to {}", args.dir.display());
    Ok(0)
}

fn write_pages(command: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<usize> {
    let page = command.clone().name(name.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("write {}", path.display()))?;
    let mut written = 1;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_name = format!("{name}-{}", sub.get_name());
        written += write_pages(sub, &sub_name, dir)?;
    }
    Ok(written)
}
// ANCHOR_END: man
