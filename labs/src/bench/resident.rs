//! What a running container costs in memory: its monitor's resident set.
//!
//! From stage 07 on, every running container has a monitor: the parent of its first process,
//! which holds its stdio, waits for it and cleans up after it. A machine that runs a hundred
//! containers runs a hundred monitors, so the monitor's size matters more than the engine's.
//! The harness starts a few containers that keep running (`run -d … /bin/sleep 60`), finds
//! each one's first process (`inspect -f '{{.State.Pid}}'`) and its parent (field 4 of
//! `/proc/PID/stat`), waits until the parent runs its steady-state program (`skiff-pump`), and
//! reads two figures of it (proc(5)):
//!
//! - `VmRSS` from `/proc/PID/status`: every page it has resident, shared or not;
//! - `Pss` from `/proc/PID/smaps_rollup`: each page divided by the number of processes that
//!   share it, so ten monitors running one program count its code once between them.
//!
//! Then it removes the containers.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::config::MemorySpec;
use super::prepare::{Ready, Setup};
use super::stats::Summary;
use super::timing::{first_line, run_timed};

/// The figures of one measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    /// How many containers ran at once.
    pub containers: usize,
    /// VmRSS of the monitors, MiB.
    pub rss_mib: Summary,
    /// Pss of the monitors, MiB.
    pub pss_mib: Summary,
    /// The programs the monitors ran when they were read (`skiff-pump`).
    pub programs: Vec<String>,
}

/// One monitor, read.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    rss_kib: u64,
    pss_kib: u64,
}

/// Starts `spec.containers` containers, reads their monitors, removes the containers.
pub fn measure(
    spec: &MemorySpec,
    ready: &Ready,
    setup: &Setup,
    timeout: Duration,
) -> Result<Resident, String> {
    let store = ready
        .store
        .as_ref()
        .ok_or("only a stage binary has containers to measure")?;
    let before = store.snapshot();
    let measured = start_and_read(spec, ready, setup, timeout);
    store.remove(&store.added_since(&before));
    let (readings, programs) = measured?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rss: Vec<f64> = readings.iter().map(|r| mib(r.rss_kib)).collect();
    let pss: Vec<f64> = readings.iter().map(|r| mib(r.pss_kib)).collect();
    Ok(Resident {
        containers: readings.len(),
        rss_mib: Summary::of(&rss).ok_or("no monitor was read")?,
        pss_mib: Summary::of(&pss).ok_or("no monitor was read")?,
        programs,
    })
}

fn start_and_read(
    spec: &MemorySpec,
    ready: &Ready,
    setup: &Setup,
    timeout: Duration,
) -> Result<(Vec<Reading>, Vec<String>), String> {
    // All of them first, so they all run when they are read: shared pages are shared.
    let mut monitors = Vec::new();
    for index in 0..spec.containers {
        let started =
            run_timed(&ready.command(index), timeout, &setup.logs()).map_err(|e| e.to_string())?;
        if !started.succeeded() {
            return Err(format!("container {index}: {}", started.failure()));
        }
        let id = started
            .stdout
            .lines()
            .rev()
            .find_map(first_line)
            .ok_or_else(|| format!("container {index}: run -d printed no id"))?;
        let pid = first_pid(ready, &id, setup, timeout)?;
        let monitor = parent_of(pid).ok_or_else(|| format!("no parent of {id}'s process {pid}"))?;
        monitors.push(monitor);
    }
    let mut readings = Vec::new();
    let mut programs = Vec::new();
    for monitor in monitors {
        if let Some(program) = &spec.monitor {
            wait_for_program(monitor, program, timeout)?;
        }
        let proc = Path::new("/proc").join(monitor.to_string());
        let status = std::fs::read_to_string(proc.join("status"))
            .map_err(|e| format!("read /proc/{monitor}/status: {e}"))?;
        let rollup = std::fs::read_to_string(proc.join("smaps_rollup"))
            .map_err(|e| format!("read /proc/{monitor}/smaps_rollup: {e}"))?;
        let (Some(rss_kib), Some(pss_kib)) =
            (kib_field(&status, "VmRSS"), kib_field(&rollup, "Pss"))
        else {
            return Err(format!(
                "no VmRSS or Pss for the monitor, process {monitor}"
            ));
        };
        readings.push(Reading { rss_kib, pss_kib });
        let exe = std::fs::read_link(proc.join("exe")).unwrap_or_default();
        let name = exe.file_name().map_or_else(
            || "?".to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        if !programs.contains(&name) {
            programs.push(name);
        }
    }
    Ok((readings, programs))
}

/// The container's first process, from `inspect -f '{{.State.Pid}}' ID`.
fn first_pid(ready: &Ready, id: &str, setup: &Setup, timeout: Duration) -> Result<i32, String> {
    let mut inspect = Command::new(&ready.program);
    inspect
        .args(["inspect", "-f", "{{.State.Pid}}", id])
        .envs(ready.env.iter().map(|(k, v)| (k, v)));
    let done = run_timed(&inspect, timeout, &setup.logs()).map_err(|e| e.to_string())?;
    if !done.succeeded() {
        return Err(format!("inspect {id}: {}", done.failure()));
    }
    done.stdout
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| format!("inspect {id} printed {:?}, not a pid", done.stdout.trim()))
}

/// The parent of `pid`, from `/proc/PID/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    parse_ppid(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Waits until `pid`'s argv[0] is `program` (by its file name): the monitor execs its
/// steady-state program once the container runs, a moment after `run -d` returned.
fn wait_for_program(pid: i32, program: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map_err(|e| format!("the monitor, process {pid}, is gone: {e}"))?;
        if argv0_is(&cmdline, program) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the monitor, process {pid}, did not run {program} within {:.0} s",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The parent pid in the text of `/proc/PID/stat`: the field after the state, which follows
/// the command name in parentheses (a name may itself hold spaces and parentheses).
fn parse_ppid(stat: &str) -> Option<i32> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// A `Key:  1234 kB` line of `/proc/PID/status` or `smaps_rollup`, in KiB.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        let mut words = value.split_whitespace();
        let number = words.next()?.parse().ok()?;
        (words.next() == Some("kB")).then_some(number)
    })
}

/// Whether a NUL-separated command line starts with `program` (or a path ending in it).
fn argv0_is(cmdline: &[u8], program: &str) -> bool {
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    Path::new(argv0.as_ref())
        .file_name()
        .is_some_and(|name| name == program)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tskiff-pump\nUmask:\t0022\nState:\tS (sleeping)\n\
        Pid:\t4242\nPPid:\t1\nVmPeak:\t    4420 kB\nVmSize:\t    4420 kB\nVmHWM:\t    9876 kB\n\
        VmRSS:\t    1184 kB\nRssAnon:\t     140 kB\nRssFile:\t    1044 kB\nThreads:\t1\n";

    const ROLLUP: &str = "55d4c5a3e000-7ffd8a5f1000 ---p 00000000 00:00 0    [rollup]\n\
        Rss:                1184 kB\nPss:                 236 kB\nPss_Dirty:           120 kB\n\
        Pss_Anon:            120 kB\nPss_File:            116 kB\nShared_Clean:       1044 kB\n";

    #[test]
    fn rss_and_pss_are_read_in_kib() {
        assert_eq!(kib_field(STATUS, "VmRSS"), Some(1184));
        assert_eq!(kib_field(STATUS, "VmHWM"), Some(9876));
        assert_eq!(
            kib_field(ROLLUP, "Pss"),
            Some(236),
            "not Pss_Dirty or Pss_Anon"
        );
        assert_eq!(kib_field(ROLLUP, "Rss"), Some(1184));
        assert_eq!(kib_field(STATUS, "Threads"), None, "a count, not a size");
        assert_eq!(kib_field(STATUS, "VmSwap"), None);
    }

    #[test]
    fn the_parent_follows_the_state_even_with_odd_names() {
        let stat = "4243 (sleep) S 4242 4243 4243 0 -1 4194560 97 0 0 0";
        assert_eq!(parse_ppid(stat), Some(4242));
        let odd = "77 (a) b (c) R 12 77 77 0";
        assert_eq!(parse_ppid(odd), Some(12));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn the_monitor_is_known_by_its_argv0() {
        assert!(argv0_is(b"skiff-pump\0--root\0/x\0", "skiff-pump"));
        assert!(argv0_is(b"/t/release/skiff-pump\0", "skiff-pump"));
        assert!(!argv0_is(b"skiff\0container-monitor\0", "skiff-pump"));
        assert!(!argv0_is(b"", "skiff-pump"));
    }

    #[test]
    fn this_process_can_be_read_as_a_monitor_is() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        let rss = kib_field(&status, "VmRSS").unwrap();
        let pss = kib_field(&rollup, "Pss").unwrap();
        assert!(rss > 0 && pss > 0 && pss <= rss, "rss {rss} pss {pss}");
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let parent = std::os::unix::process::parent_id();
        assert_eq!(parse_ppid(&stat), i32::try_from(parent).ok());
    }
}
