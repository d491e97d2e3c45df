//! Timing one run: the wall time from launch to exit, and the peak memory of what ran.
//!
//! The harness does not fork contestants itself: it asks `bench-launcher` (a small static
//! program, `launcher.rs` beside this file) to. A forked child's peak memory starts at its
//! parent's size, so a contestant forked by the harness would report at least the harness's
//! own memory; forked by the launcher, it inherits only the launcher's own megabyte or so. The
//! launcher also keeps the clock: from just before its fork to the moment the child exits (it
//! waits on a pidfd, with the timeout), and reports wait4's `ru_maxrss`: the largest peak
//! resident set of any one process of the tree that the child waited for (getrusage(2)), not
//! their sum.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The launcher as `build.rs` compiled it.
pub fn launcher_path() -> &'static Path {
    Path::new(env!("LAB_BENCH_LAUNCHER"))
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

/// A run that ended by itself.
#[derive(Debug, Clone)]
pub struct Finished {
    /// From just before the fork to the moment it exited.
    pub wall: Duration,
    /// `ru_maxrss` from wait4: the largest peak RSS of one process of the tree, in KiB.
    pub max_rss_kib: u64,
    /// Its exit status.
    pub status: Status,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
}

/// A run that could not be timed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The launcher could not start, or could not start the program.
    #[error("{0}")]
    Launch(String),
    /// The run took longer than its timeout and was killed.
    #[error("no exit after {:.1}s (killed){}", .after.as_secs_f64(), first_line_suffix(.output))]
    TimedOut {
        /// The timeout.
        after: Duration,
        /// What it had printed.
        output: String,
    },
}

fn first_line_suffix(output: &str) -> String {
    match first_line(output) {
        Some(line) => format!(": {line}"),
        None => String::new(),
    }
}

/// The first non-empty line of `text`, trimmed and cut to 200 characters.
pub fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| line.chars().take(200).collect())
}

impl Finished {
    /// Whether it exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.status == Status::Exited(0)
    }

    /// Why it failed, in one line: its status and the first line of its stderr (or stdout).
    pub fn failure(&self) -> String {
        let status = match self.status {
            Status::Exited(code) => format!("exit {code}"),
            Status::Signaled(signal) => format!("killed by signal {signal}"),
        };
        match first_line(&self.stderr).or_else(|| first_line(&self.stdout)) {
            Some(line) => format!("{status}: {line}"),
            None => status,
        }
    }
}

/// What the launcher reports: `wall_ns=N maxrss_kib=N status=exit:N|signal:N|timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Report {
    wall: Duration,
    max_rss_kib: u64,
    status: Option<Status>,
}

fn parse_report(line: &str) -> Option<Report> {
    let mut report = Report {
        wall: Duration::ZERO,
        max_rss_kib: 0,
        status: None,
    };
    let mut fields = 0;
    for field in line.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        match key {
            "wall_ns" => report.wall = Duration::from_nanos(value.parse().ok()?),
            "maxrss_kib" => report.max_rss_kib = value.parse().ok()?,
            "status" => {
                report.status = match value.split_once(':') {
                    Some(("exit", code)) => Some(Status::Exited(code.parse().ok()?)),
                    Some(("signal", signal)) => Some(Status::Signaled(signal.parse().ok()?)),
                    None if value == "timeout" => None,
                    _ => return None,
                }
            }
            _ => return None,
        }
        fields += 1;
    }
    (fields == 3).then_some(report)
}

// ANCHOR: time_one_run
/// Runs `command` once through the launcher, with stdin closed and stdout/stderr in files under
/// `logs`, and times it. Its program, arguments, environment and directory are passed on.
pub fn run_timed(command: &Command, timeout: Duration, logs: &Path) -> Result<Finished, RunError> {
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    let mut launcher = Command::new(launcher_path());
    launcher
        .arg(timeout.as_millis().to_string())
        .arg(&out_path)
        .arg(&err_path)
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => launcher.env(key, value),
            None => launcher.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        launcher.current_dir(dir);
    }
    let output = launcher
        .output()
        .map_err(|e| RunError::Launch(format!("cannot run {}: {e}", launcher_path().display())))?;
    let said = String::from_utf8_lossy(&output.stdout);
    let Some(report) = parse_report(said.trim()) else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = first_line(&stderr)
            .map(|line| line.trim_start_matches("bench-launcher: ").to_string())
            .unwrap_or_else(|| format!("the launcher said {said:?}"));
        return Err(RunError::Launch(message));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    match report.status {
        Some(status) => Ok(Finished {
            wall: report.wall,
            max_rss_kib: report.max_rss_kib,
            status,
            stdout,
            stderr,
        }),
        None => Err(RunError::TimedOut {
            after: timeout,
            output: format!("{stderr}\n{stdout}"),
        }),
    }
}
// ANCHOR_END: time_one_run

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_report_parses() {
        assert_eq!(
            parse_report("wall_ns=2811042 maxrss_kib=2468 status=exit:0"),
            Some(Report {
                wall: Duration::from_nanos(2_811_042),
                max_rss_kib: 2468,
                status: Some(Status::Exited(0)),
            })
        );
        let killed = parse_report("wall_ns=1 maxrss_kib=2 status=signal:9").unwrap();
        assert_eq!(killed.status, Some(Status::Signaled(9)));
        let late = parse_report("wall_ns=1 maxrss_kib=2 status=timeout").unwrap();
        assert_eq!(late.status, None);
        assert_eq!(parse_report("wall_ns=1 status=exit:0"), None);
        assert_eq!(parse_report("hello"), None);
    }

    #[test]
    fn a_run_reports_its_status_output_and_memory() {
        let logs = tempfile::tempdir().unwrap();
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", "echo \"out $BENCH_TEST\"; echo oops >&2; exit 3"])
            .env("BENCH_TEST", "passed on");
        let run = run_timed(&command, Duration::from_secs(20), logs.path()).unwrap();
        assert_eq!(run.status, Status::Exited(3));
        assert_eq!(run.stdout, "out passed on\n");
        assert_eq!(run.failure(), "exit 3: oops");
        assert!(run.max_rss_kib > 0, "a shell has some resident memory");
        assert!(run.wall > Duration::ZERO);
    }

    #[test]
    fn the_peak_is_the_contestants_not_the_harness() {
        // This test process holds several MiB; the static probe, launched by the small
        // launcher, must measure far less than that.
        let own_peak_kib = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap();
        let logs = tempfile::tempdir().unwrap();
        let mut command = Command::new(crate::fixtures::probe_path());
        command.args(["exit", "0"]);
        let run = run_timed(&command, Duration::from_secs(20), logs.path()).unwrap();
        assert!(run.succeeded(), "{}", run.failure());
        assert!(
            run.max_rss_kib < own_peak_kib,
            "probe {} KiB, harness {own_peak_kib} KiB",
            run.max_rss_kib
        );
    }

    #[test]
    fn a_run_past_its_timeout_is_killed_with_its_children() {
        let logs = tempfile::tempdir().unwrap();
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "echo started; sleep 30 & sleep 30"]);
        let error = run_timed(&command, Duration::from_millis(300), logs.path()).unwrap_err();
        assert_eq!(error.to_string(), "no exit after 0.3s (killed): started");
    }

    #[test]
    fn a_missing_program_is_a_launch_error() {
        let logs = tempfile::tempdir().unwrap();
        let command = Command::new("/nonexistent/program");
        let error = run_timed(&command, Duration::from_secs(1), logs.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot start /nonexistent/program"),
            "{error}"
        );
    }
}
