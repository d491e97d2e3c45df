//! What skiff left on the host: the same scan as `shared/tools/leaks`, from Rust.
//!
//! skiff names everything it creates on the host so it can be found: mounts and cgroups carry
//! `skiff` in their path, links start with `sk-` or `skiff`, firewall rules mention `skiff`. A
//! leftover process is one whose command line says `skiff` or whose executable is a lab fixture
//! or the binary under test.

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

/// This process and its ancestors (cargo, the shell): never leftovers.
fn ancestors() -> Vec<u32> {
    let mut pids = vec![std::process::id()];
    let mut pid = std::process::id();
    while pid > 1 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            break;
        };
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        else {
            break;
        };
        pids.push(ppid);
        pid = ppid;
    }
    pids
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
