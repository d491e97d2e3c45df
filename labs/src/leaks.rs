//! What an engine left on the host, seen two ways.
//!
//! **A diff, for a check.** A check with `no_leaks` takes a [`Snapshot`] of the host (mounts,
//! cgroups, links, network namespaces, firewall rules, processes, files under the check's store)
//! right before its last engine command and another after it; [`Snapshot::diff`] lists what the
//! second holds and the first did not. That finds what an engine added and did not remove however
//! it names things, and what existed before the check (a default bridge the README's demo made, a
//! learner's own containers) never counts.
//!
//! **A search, for a whole test run.** [`scan`] is the same search as `shared/tools/leaks`: skiff
//! names everything it creates on the host so it can be found, so after a test run nothing on the
//! host may carry its names. Mounts and cgroups carry `skiff` in their path, links start with
//! `sk-` or `skiff`, firewall rules mention `skiff`. A leftover process is one whose command line
//! says `skiff` or whose executable is a lab fixture or the binary under test.

mod rules;
mod snapshot;

pub use snapshot::{Mount, Process, ProcessId, Snapshot, left_behind};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything found, one line each ("mount: /var/lib/skiff/overlay/ab12/merged (overlay)").
pub fn scan(binaries: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    mounts(&mut found);
    cgroups(&mut found);
    links(&mut found);
    netns(&mut found);
    firewall(&mut found);
    processes(binaries, &mut found);
    found
}

fn mounts(found: &mut Vec<String>) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in text.lines() {
        let mut fields = line.split(' ');
        let (_, Some(target), Some(fstype)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if target.contains("skiff") {
            found.push(format!("mount: {target} ({fstype})"));
        }
    }
}

fn cgroups(found: &mut Vec<String>) {
    fn walk(dir: &Path, depth: u32, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy().contains("skiff") {
                found.push(format!("cgroup: {}", path.display()));
            } else if depth > 0 {
                walk(&path, depth - 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), 4, found);
}

fn links(found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("sk-") || name.starts_with("skiff") {
            found.push(format!("link: {name}"));
        }
    }
}

fn netns(found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains("skiff") {
            found.push(format!("netns: {name}"));
        }
    }
}

fn firewall(found: &mut Vec<String>) {
    for table in ["filter", "nat", "mangle"] {
        let Ok(output) = Command::new("iptables-save").args(["-t", table]).output() else {
            return;
        };
        let count = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.to_lowercase().contains("skiff"))
            .count();
        if count > 0 {
            found.push(format!(
                "iptables {table}: {count} rules or chains mention skiff"
            ));
        }
    }
}

/// How many times each item appears.
fn count<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut counted = BTreeMap::new();
    for item in items {
        *counted.entry(item).or_insert(0) += 1;
    }
    counted
}

/// This process and its ancestors (cargo, the shell): never leftovers.
fn ancestors() -> Vec<u32> {
    let mut pids = vec![std::process::id()];
    let mut pid = std::process::id();
    while pid > 1 {
        let Some(stat) = Stat::of(pid) else {
            break;
        };
        pids.push(stat.ppid);
        pid = stat.ppid;
    }
    pids
}

/// The fields of `/proc/PID/stat` (proc(5)) that tell processes apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    /// The state letter: `R`, `S`, `Z` for a zombie...
    state: char,
    /// The parent's pid.
    ppid: u32,
    /// The kernel's `PF_*` flags.
    flags: u32,
    /// When the process started, in clock ticks since boot: a pid used again is a new process.
    start: u64,
}

/// `PF_KTHREAD` from the kernel's sched.h: the process is a kernel thread.
const PF_KTHREAD: u32 = 0x0020_0000;

impl Stat {
    fn of(pid: u32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Parses a stat line. The command name (field 2) may hold spaces and parentheses, so the
    /// fields are counted from the last `)`: the state is field 3.
    fn parse(line: &str) -> Option<Stat> {
        let fields: Vec<&str> = line.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).copied();
        Some(Stat {
            state: field(3)?.chars().next()?,
            ppid: field(4)?.parse().ok()?,
            flags: field(9)?.parse().ok()?,
            start: field(22)?.parse().ok()?,
        })
    }

    fn kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

fn processes(binaries: &[PathBuf], found: &mut Vec<String>) {
    let fixtures = crate::fixtures::fixtures_dir();
    let skip = ancestors();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if skip.contains(&pid) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if raw.is_empty() {
            continue; // a kernel thread, or a zombie
        }
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let exe = std::fs::read_link(entry.path().join("exe")).unwrap_or_default();
        let exe = PathBuf::from(exe.to_string_lossy().trim_end_matches(" (deleted)"));
        let ours = (cmdline.contains("skiff") && !cmdline.contains("tools/leaks"))
            || exe.starts_with(&fixtures)
            // The probe inside a container: its path as the container's mount namespace sees it.
            || exe == Path::new("/bin/probe")
            || binaries.contains(&exe);
        if ours {
            let short: String = cmdline.trim().chars().take(120).collect();
            found.push(format!("process {pid}: {short}"));
        }
    }
}
