//! `top`: the processes of a running container, as the host's ps(1) shows them.
//!
//! A container's processes are host processes like any other; what makes them the container's
//! is their cgroup. So `top` does what Docker's does: it runs the host's `ps` with the options
//! given (`-ef` by default), and keeps the header and the lines whose PID is one of the
//! cgroup's. The pids are the host's: inside, the first process is PID 1. See docker-top(1).

use std::process::Command;

use anyhow::{Context, bail};

use crate::container::Record;

// ANCHOR: top
/// The `ps` output of the container's processes.
pub fn top(record: &Record, ps_args: &[String]) -> anyhow::Result<String> {
    if !record.state.is_running() {
        bail!("Container {} is not running", record.id);
    }
    let path = record
        .cgroup
        .as_deref()
        .context("the container has no cgroup")?;
    let pids = cgroups::processes_at(path)?;
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = Command::new("ps")
        .args(&args)
        .output()
        .context("run ps(1): install procps")?;
    if !output.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    filter(&String::from_utf8_lossy(&output.stdout), &pids)
}
// ANCHOR_END: top

/// Keeps the header and the lines of `ps` output whose PID column holds one of `pids`.
fn filter(text: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|c| c == "PID") else {
        bail!("Couldn't find PID field in ps output");
    };
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_header_and_the_containers_lines() {
        let ps = "UID  PID  PPID  C STIME TTY TIME CMD\n\
                  root 1    0     0 10:00 ?   0:01 /sbin/init\n\
                  root 42   41    0 10:01 ?   0:00 sleep 60\n\
                  root 43   42    0 10:01 ?   0:00 sh\n";
        let kept = filter(ps, &[42, 43]).unwrap();
        assert_eq!(kept.lines().count(), 3);
        assert!(kept.contains("sleep 60") && !kept.contains("init"));
        assert!(filter("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
