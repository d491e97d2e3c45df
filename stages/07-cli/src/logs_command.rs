//! `logs`: what a container wrote, read back from its json-file log (see [`crate::logs`]), so
//! a container started with `-d`, or one that has ended, still shows its output. With
//! `--follow` it keeps printing while the container runs, as `tail -f` does.
//!
//! Reference: docker-logs(1): `-f`, `-n/--tail`, `--since`, `--until`, `-t`, `--details`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::Args;
use namespaces::RootArgs;

use crate::logs::{ReadOptions, parse_time};

/// How often `--follow` reloads the container's record to see whether it still runs.
const RECHECK: Duration = Duration::from_millis(100);

/// `logs`'s flags.
#[derive(Args)]
pub struct LogsArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Show logs since a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for
    /// 42 minutes)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for
    /// 42 minutes)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

// ANCHOR: command
/// `logs`.
pub fn command(args: LogsArgs) -> anyhow::Result<i32> {
    // The times are checked before the container is looked up, as the docker CLI does.
    let now = SystemTime::now();
    let since = time_flag("since", args.since.as_deref(), now)?;
    let until = time_flag("until", args.until.as_deref(), now)?;
    let root = &args.root.root;
    let record = crate::lifecycle::find(root, &args.container)?;
    let dir = crate::container::records(root).dir(&record.id);
    let path = crate::logs::log_path(&dir, &record.id);
    let options = ReadOptions {
        // Following a container that does not run ends at once: follow only a running one.
        follow: args.follow && record.state.is_running(),
        tail: tail(&args.tail),
        since,
        until,
        timestamps: args.timestamps,
        details: args.details,
    };
    let mut running = Running::new(root, &record.id);
    let (mut out, mut err) = (io::stdout().lock(), io::stderr());
    let result = crate::logs::read(&path, &options, &mut out, &mut err, &mut || running.check());
    match result {
        Ok(()) => Ok(0),
        // `skiff logs web | head`: the reader has seen enough.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}
// ANCHOR_END: command

/// `--since` or `--until`, in Docker's words when it cannot be read.
fn time_flag(
    name: &str,
    value: Option<&str>,
    now: SystemTime,
) -> anyhow::Result<Option<SystemTime>> {
    value
        .map(|text| parse_time(text, now).with_context(|| format!("invalid value for \"{name}\"")))
        .transpose()
}

/// `--tail`: a number of lines, or every line for `all`, a negative number or anything else
/// that is not a number (Docker's daemon reads them all so).
pub(crate) fn tail(text: &str) -> Option<usize> {
    text.parse::<i64>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

/// Whether the container still runs, from its record, read again at most every `RECHECK`.
pub(crate) struct Running {
    root: PathBuf,
    id: String,
    last: Option<(Instant, bool)>,
}

impl Running {
    pub(crate) fn new(root: &Path, id: &str) -> Self {
        Running {
            root: root.to_path_buf(),
            id: id.to_string(),
            last: None,
        }
    }

    pub(crate) fn check(&mut self) -> bool {
        if let Some((at, running)) = self.last
            && at.elapsed() < RECHECK
        {
            return running;
        }
        // A record that cannot be read (removed with `rm -f`) means nothing more will come.
        let running =
            crate::lifecycle::find(&self.root, &self.id).is_ok_and(|r| r.state.is_running());
        self.last = Some((Instant::now(), running));
        running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_docker_values() {
        assert_eq!(tail("all"), None);
        assert_eq!(tail("0"), Some(0));
        assert_eq!(tail("10"), Some(10));
        // Docker's daemon shows every line for these.
        assert_eq!(tail("-1"), None);
        assert_eq!(tail("ten"), None);
    }

    #[test]
    fn bad_times_are_named_by_flag() {
        let error = time_flag("since", Some("yesterday"), SystemTime::now()).unwrap_err();
        assert_eq!(
            chroot::cli::one_line(&error),
            r#"invalid value for "since": failed to parse value as time or duration: "yesterday""#
        );
        assert_eq!(time_flag("until", None, SystemTime::now()).unwrap(), None);
    }

    #[test]
    fn running_is_not_reloaded_more_often_than_recheck() {
        let root = tempfile::tempdir().unwrap();
        let mut running = Running::new(root.path(), "nope");
        assert!(!running.check(), "no record: not running");
        // A cached answer, whatever the store says now.
        running.last = Some((Instant::now(), true));
        assert!(running.check());
        running.last = Some((Instant::now() - RECHECK, true));
        assert!(!running.check());
    }
}
