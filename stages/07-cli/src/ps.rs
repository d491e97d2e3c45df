//! `ps`: the containers, in Docker's columns. (A first version.)

use clap::Args;
use namespaces::RootArgs;

/// `ps`'s flags.
#[derive(Args)]
pub struct PsArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Show all containers (default: the running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Only show ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
}

/// `ps`.
pub fn command(args: PsArgs) -> anyhow::Result<i32> {
    let records = crate::lifecycle::list(&args.root.root)?;
    let now = std::time::SystemTime::now();
    let mut rows = Vec::new();
    for record in records.iter().rev() {
        if !args.all && !record.state.is_running() {
            continue;
        }
        let id = if args.no_trunc {
            record.id.clone()
        } else {
            record.id[..12].to_string()
        };
        if args.quiet {
            println!("{id}");
            continue;
        }
        let command: Vec<String> = record
            .config
            .entrypoint
            .iter()
            .chain(&record.config.cmd)
            .cloned()
            .collect();
        let status = match record.state.status {
            namespaces::record::Status::Running => format!(
                "Up {}",
                images::human::human_duration(
                    record
                        .state
                        .started_at
                        .as_deref()
                        .and_then(images::human::parse_time)
                        .and_then(|t| now.duration_since(t).ok())
                        .unwrap_or_default()
                )
            ),
            namespaces::record::Status::Created => "Created".to_string(),
            _ => format!(
                "Exited ({}) {} ago",
                record.state.exit_code,
                images::human::human_duration(
                    record
                        .state
                        .finished_at
                        .as_deref()
                        .and_then(images::human::parse_time)
                        .and_then(|t| now.duration_since(t).ok())
                        .unwrap_or_default()
                )
            ),
        };
        rows.push(vec![
            id,
            record.config.image.clone(),
            format!("\"{}\"", images::human::ellipsis(&command.join(" "), 20)),
            images::human::ago(Some(&record.created), now),
            status,
            String::new(),
            record.name.clone(),
        ]);
    }
    if !args.quiet {
        print!(
            "{}",
            images::human::table(
                &[
                    "CONTAINER ID",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS",
                    "PORTS",
                    "NAMES"
                ],
                &rows
            )
        );
    }
    Ok(0)
}
