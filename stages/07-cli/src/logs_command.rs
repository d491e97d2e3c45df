//! `logs`: what a container wrote, from its json-file log.

use clap::Args;
use namespaces::RootArgs;

/// `logs`'s flags.
#[derive(Args)]
pub struct LogsArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Follow the log while the container runs
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line)
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<String>,
    /// Only lines since this time (RFC 3339, a Unix time, or a duration before now: 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines before this time
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Show each line's time
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `logs`.
pub fn command(args: LogsArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let record = crate::lifecycle::find(root, &args.container)?;
    let dir = crate::container::records(root).dir(&record.id);
    let path = crate::logs::log_path(&dir, &record.id);
    let options = crate::logs::ReadOptions {
        follow: args.follow,
        ..Default::default()
    };
    let id = record.id.clone();
    let root = root.clone();
    let mut running =
        move || crate::lifecycle::find(&root, &id).is_ok_and(|r| r.state.is_running());
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    crate::logs::read(&path, &options, &mut out, &mut err, &mut running)?;
    Ok(0)
}
