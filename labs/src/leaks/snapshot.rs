//! A snapshot of the host, and the difference between two of them.
//!
//! A snapshot holds what a container engine can add to a host and forget to remove: mounts
//! (proc(5), `/proc/self/mountinfo`), cgroup directories (cgroups(7)), network links
//! (`/sys/class/net`), named network namespaces (`/run/netns`), firewall rules, processes, and the
//! files under the check's store root. [`Snapshot::diff`] says what a later snapshot holds that
//! an earlier one did not; what disappeared in between is not a leak, and neither is anything
//! that was already there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Stat, ancestors, count, rules};

/// What the host holds at one moment, as far as a container engine can change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Mount points with their filesystem type, and how many times each is mounted: a point can
    /// be mounted over, and the second mount is a leak of its own.
    pub mounts: BTreeMap<Mount, usize>,
    /// Cgroup directories of every hierarchy (v1 controllers, v2, or both on a hybrid host).
    pub cgroups: BTreeSet<PathBuf>,
    /// Network links, by name.
    pub links: BTreeSet<String>,
    /// Named network namespaces, as `ip netns` keeps them in `/run/netns`.
    pub netns: BTreeSet<String>,
    /// Firewall rules without their counters, and how many times each appears.
    pub rules: BTreeMap<String, usize>,
    /// The processes, but for the harness, its ancestors and kernel threads.
    pub processes: BTreeMap<ProcessId, Process>,
    /// The harness and its ancestors: the processes whose children are the check's.
    pub harness: BTreeSet<u32>,
    /// Files and directories under the store root, relative to it, but for lock files and the
    /// store's own layout (see [`store_files`]).
    pub files: BTreeSet<PathBuf>,
}

/// One mount: where, and of what filesystem type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mount {
    /// The mount point.
    pub target: String,
    /// The filesystem type ("overlay", "tmpfs", "proc").
    pub fstype: String,
}

/// A process, told apart from a later one given the same pid by when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Its start time in clock ticks after boot (field 22 of `/proc/PID/stat`).
    pub start: u64,
}

/// What a snapshot knows of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its parent's pid.
    pub ppid: u32,
    /// Its command line, arguments joined by spaces.
    pub cmdline: String,
}

/// How deep below `/sys/fs/cgroup` to look: a controller, the engine's parent group, a
/// container's group and a few levels it may make inside, and not the whole of a deep systemd
/// tree.
const CGROUP_DEPTH: u32 = 6;

/// How deep below the store root to look: deep enough for an image's files.
const STORE_DEPTH: u32 = 32;

/// How much of a command line a report shows.
const CMDLINE_SHOWN: usize = 120;

/// How many files under the store a report lists before it counts the rest.
const FILES_SHOWN: usize = 20;

impl Snapshot {
    /// Looks at the host now; `store` is the check's store root.
    pub fn take(store: &Path) -> Snapshot {
        let harness: BTreeSet<u32> = ancestors().into_iter().collect();
        Snapshot {
            mounts: mounts(),
            cgroups: cgroups(Path::new("/sys/fs/cgroup")),
            links: names_in(Path::new("/sys/class/net")),
            netns: names_in(Path::new("/run/netns")),
            rules: rules::all(),
            processes: processes(&harness),
            harness,
            files: store_files(store),
        }
    }

    /// What `after` holds that `before` did not, one readable line each ("link: sk-1234").
    pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
        let mut added = Vec::new();
        let mounts = more(&before.mounts, &after.mounts);
        added.extend(mounts.map(|m| format!("mount: {} ({})", m.target, m.fstype)));
        let cgroups = after.cgroups.difference(&before.cgroups);
        added.extend(cgroups.map(|cgroup| format!("cgroup: {}", cgroup.display())));
        let links = after.links.difference(&before.links);
        added.extend(links.map(|link| format!("link: {link}")));
        let netns = after.netns.difference(&before.netns);
        added.extend(netns.map(|netns| format!("netns: {netns}")));
        let rules = more(&before.rules, &after.rules);
        added.extend(rules.map(|rule| format!("rule: {rule}")));
        for id in new_processes(before, after) {
            let cmdline = &after.processes[&id].cmdline;
            let shown: String = cmdline.chars().take(CMDLINE_SHOWN).collect();
            added.push(format!("process {}: {shown}", id.pid));
        }
        added.extend(new_files(before, after));
        added
    }
}

/// Each item as many times as `after` has it more often than `before`.
fn more<'a, T: Ord>(
    before: &'a BTreeMap<T, usize>,
    after: &'a BTreeMap<T, usize>,
) -> impl Iterator<Item = &'a T> {
    after.iter().flat_map(|(item, count)| {
        let had = before.get(item).copied().unwrap_or(0);
        std::iter::repeat_n(item, count.saturating_sub(had))
    })
}

/// The files under the store that `after` has and `before` had not, the first
/// [`FILES_SHOWN`] by name and then how many more: a leftover image is thousands.
fn new_files(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let files: Vec<&PathBuf> = after.files.difference(&before.files).collect();
    let mut lines: Vec<String> = files
        .iter()
        .take(FILES_SHOWN)
        .map(|file| format!("file under the store: {}", file.display()))
        .collect();
    if files.len() > FILES_SHOWN {
        let more = files.len() - FILES_SHOWN;
        lines.push(format!("file under the store: … and {more} more"));
    }
    lines
}

/// What the host holds now that it did not at `before`, `store` being the check's store root.
/// A process that is still exiting is not a leak, and neither is what it removes on its way
/// out (stage 07's monitor deletes the default bridge after its client returned): while the
/// check's processes are still there, for up to `grace`, the whole host is looked at again.
pub fn left_behind(before: &Snapshot, store: &Path, grace: Duration) -> Vec<String> {
    let mut after = Snapshot::take(store);
    let deadline = Instant::now() + grace;
    while !new_processes(before, &after).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        after = Snapshot::take(store);
    }
    Snapshot::diff(before, &after)
}

/// The processes of `after` that `before` lacks and that the check started.
///
/// The host is not quiet while a check runs: a build or a shell elsewhere starts processes too.
/// A process is the check's when, following its parents up through processes that are new as
/// well, one reaches the harness, an ancestor of it (an orphan is re-parented to the nearest
/// subreaper above the engine, or to init, all ancestors of the harness) or a parent that is
/// gone. One reached through a process that was there before, and is not the harness's, is
/// another program's. (An engine that hands its containers to a daemon running before the check
/// would escape this; skiff's engines have no daemon.)
fn new_processes(before: &Snapshot, after: &Snapshot) -> Vec<ProcessId> {
    let by_pid: BTreeMap<u32, ProcessId> = after.processes.keys().map(|id| (id.pid, *id)).collect();
    let is_new = |id: &ProcessId| !before.processes.contains_key(id);
    let harness = |pid: u32| before.harness.contains(&pid) || after.harness.contains(&pid);
    let the_checks = |id: &ProcessId| {
        let mut pid = after.processes[id].ppid;
        // Bounded: a pid reused while we look could make a loop.
        for _ in 0..64 {
            if harness(pid) {
                return true;
            }
            match by_pid.get(&pid) {
                Some(parent) if is_new(parent) => pid = after.processes[parent].ppid,
                Some(_) => return false,
                None => return true,
            }
        }
        true
    };
    after
        .processes
        .keys()
        .filter(|id| is_new(id) && the_checks(id))
        .copied()
        .collect()
}

/// Every mount of the harness's mount namespace, which is the host's.
fn mounts() -> BTreeMap<Mount, usize> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    count(text.lines().filter_map(parse_mountinfo))
}

/// One line of mountinfo: `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw`. The
/// mount point is field 5; the filesystem type follows the `-` that ends the optional fields.
fn parse_mountinfo(line: &str) -> Option<Mount> {
    let (mount, filesystem) = line.split_once(" - ")?;
    let target = mount.split(' ').nth(4)?;
    let fstype = filesystem.split(' ').next()?;
    Some(Mount {
        target: unescape(target),
        fstype: fstype.to_string(),
    })
}

/// Undoes the kernel's octal escapes in a mount point (`\040` for a space).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let digits = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(digits, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup directories under `root`, down to [`CGROUP_DEPTH`]. Symbolic links (`cpu` for
/// `cpu,cpuacct`) are not followed, so a hierarchy is listed once.
fn cgroups(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, depth: u32, found: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                let path = entry.path();
                if depth > 1 {
                    walk(&path, depth - 1, found);
                }
                found.insert(path);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(root, CGROUP_DEPTH, &mut found);
    found
}

/// The names of the entries of `dir`; none when it does not exist.
fn names_in(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The running processes, but for those in `harness`, kernel threads and zombies (a zombie
/// has ended; if its parent is a leak, the parent is listed).
fn processes(harness: &BTreeSet<u32>) -> BTreeMap<ProcessId, Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| !harness.contains(pid))
        .filter_map(|pid| {
            let stat = Stat::of(pid)?;
            if stat.kernel_thread() || stat.state == 'Z' {
                return None;
            }
            let id = ProcessId {
                pid,
                start: stat.start,
            };
            let process = Process {
                ppid: stat.ppid,
                cmdline: cmdline(pid)?,
            };
            Some((id, process))
        })
        .collect()
}

/// A process's command line; `None` when it ended meanwhile.
fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .replace('\0', " ")
            .trim()
            .to_string(),
    )
}

/// The store's directory of things kept to be faster (`namespaces::seccomp::CACHE`).
const CACHE: &str = "cache";

/// Whether a file is a lock or the store's journal: an engine may keep its lock files
/// (`containers.lock`, `networks/lock`) once made, since removing a lock another engine may hold
/// is a race; and its event journal (`events.log`, turned over to `events.log.1`) is history
/// that `events --since` reads, not state a container holds.
fn is_lock(name: &str) -> bool {
    name == "lock" || name.ends_with(".lock") || name == "events.log" || name == "events.log.1"
}

/// The files and directories under the store root `store`, as paths relative to it, but for
/// lock files, the store's layout (a directory right under the root that holds nothing but
/// locks: `containers/`, `networks/` with its lock, which an engine makes on first use and may
/// keep) and its `cache/`, which holds what the engine keeps only to be faster (stage 02's
/// compiled seccomp filter) and may delete at any time. What a container leaves is content:
/// `containers/<id>/...`.
fn store_files(store: &Path) -> BTreeSet<PathBuf> {
    fn walk(store: &Path, dir: &Path, depth: u32, found: &mut BTreeSet<PathBuf>) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut counted = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            if !is_dir && is_lock(&entry.file_name().to_string_lossy()) {
                continue;
            }
            if is_dir && dir == store && entry.file_name() == CACHE {
                continue;
            }
            let inside = if is_dir && depth > 1 {
                walk(store, &path, depth - 1, found)
            } else {
                0
            };
            let layout = is_dir && dir == store && inside == 0;
            if !layout && let Ok(relative) = path.strip_prefix(store) {
                found.insert(relative.to_path_buf());
                counted += 1;
            }
        }
        counted
    }
    let mut found = BTreeSet::new();
    walk(store, store, STORE_DEPTH, &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(target: &str, fstype: &str) -> Mount {
        Mount {
            target: target.into(),
            fstype: fstype.into(),
        }
    }

    fn process(pid: u32, start: u64, ppid: u32, cmdline: &str) -> (ProcessId, Process) {
        (
            ProcessId { pid, start },
            Process {
                ppid,
                cmdline: cmdline.into(),
            },
        )
    }

    /// A host as a check finds it: a harness (pid 100, under init), a shell and a bridge of a
    /// demo run earlier, with its rule.
    fn host() -> Snapshot {
        Snapshot {
            mounts: BTreeMap::from([(mount("/", "ext4"), 1), (mount("/proc", "proc"), 1)]),
            cgroups: BTreeSet::from(["/sys/fs/cgroup/memory/user.slice".into()]),
            links: BTreeSet::from(["lo".into(), "eth0".into(), "skiff0".into()]),
            netns: BTreeSet::new(),
            rules: count(["-t nat -A POSTROUTING -s 10.88.0.0/16 -j MASQUERADE".into()]),
            processes: BTreeMap::from([process(50, 7, 1, "bash")]),
            harness: BTreeSet::from([1, 100]),
            files: BTreeSet::from(["images".into()]),
        }
    }

    #[test]
    fn the_same_host_has_no_difference() {
        assert!(Snapshot::diff(&host(), &host()).is_empty());
    }

    #[test]
    fn what_was_there_before_and_what_went_away_do_not_count() {
        let mut after = host();
        after.links.remove("skiff0");
        after.rules.clear();
        after.processes.clear();
        assert!(Snapshot::diff(&host(), &after).is_empty());
    }

    #[test]
    fn an_added_mount_is_reported_even_over_an_existing_one() {
        let mut after = host();
        after.mounts.insert(mount("/x/y", "overlay"), 1);
        after.mounts.insert(mount("/proc", "proc"), 2);
        assert_eq!(
            Snapshot::diff(&host(), &after),
            ["mount: /proc (proc)", "mount: /x/y (overlay)"]
        );
    }

    #[test]
    fn cgroups_links_netns_and_rules_are_reported() {
        let mut after = host();
        after
            .cgroups
            .insert("/sys/fs/cgroup/memory/skiff/abc".into());
        after.links.insert("sk-1234".into());
        after.netns.insert("ns1".into());
        after
            .rules
            .insert("-t filter -A FORWARD -i br9 -j ACCEPT".into(), 1);
        assert_eq!(
            Snapshot::diff(&host(), &after),
            [
                "cgroup: /sys/fs/cgroup/memory/skiff/abc",
                "link: sk-1234",
                "netns: ns1",
                "rule: -t filter -A FORWARD -i br9 -j ACCEPT",
            ]
        );
    }

    #[test]
    fn a_rule_added_a_second_time_is_reported() {
        let mut after = host();
        after.rules.insert(
            "-t nat -A POSTROUTING -s 10.88.0.0/16 -j MASQUERADE".into(),
            2,
        );
        assert_eq!(
            Snapshot::diff(&host(), &after),
            ["rule: -t nat -A POSTROUTING -s 10.88.0.0/16 -j MASQUERADE"]
        );
    }

    #[test]
    fn a_rule_whose_counters_changed_is_not_a_difference() {
        let save = |counters: &str| {
            format!("*nat\n:POSTROUTING ACCEPT {counters}\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n")
        };
        let mut before = host();
        before.rules = count(rules::from_iptables_save("nat", &save("[0:0]")));
        let mut after = host();
        after.rules = count(rules::from_iptables_save("nat", &save("[52:3120]")));
        assert!(Snapshot::diff(&before, &after).is_empty());
    }

    #[test]
    fn the_same_pid_started_again_is_a_new_process() {
        let mut after = host();
        after.processes = BTreeMap::from([process(50, 9, 100, "probe sleep 60")]);
        assert_eq!(
            Snapshot::diff(&host(), &after),
            ["process 50: probe sleep 60"]
        );
    }

    #[test]
    fn orphans_count_and_other_programs_children_do_not() {
        let mut after = host();
        after.processes.extend([
            // A container's init re-parented to init, and its child.
            process(200, 20, 1, "probe sleep 60"),
            process(201, 21, 200, "probe sleep 61"),
            // Still the harness's child.
            process(202, 22, 100, "engine run"),
            // Started meanwhile by the shell that was there before: not the check's.
            process(300, 30, 50, "rustc --crate-name x"),
            process(301, 31, 300, "cc"),
        ]);
        assert_eq!(
            Snapshot::diff(&host(), &after),
            [
                "process 200: probe sleep 60",
                "process 201: probe sleep 61",
                "process 202: engine run",
            ]
        );
    }

    #[test]
    fn files_under_the_store_but_not_locks_layout_or_cache() {
        let store = tempfile::tempdir().unwrap();
        let root = store.path();
        let before = store_files(root);
        for dir in ["containers", "networks", "images/abc", "overlay/ab12/upper"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::create_dir_all(root.join("cache")).unwrap();
        for file in [
            "networks/lock",
            "containers.lock",
            "images/abc/layer.tar",
            "cache/seccomp-default-00000000a80425fb-8c1e2f3a4b5d6e7f.bpf",
        ] {
            std::fs::write(root.join(file), "").unwrap();
        }
        let after = store_files(root);
        let diff = |before: &BTreeSet<PathBuf>, after: &BTreeSet<PathBuf>| {
            let before = Snapshot {
                files: before.clone(),
                ..host()
            };
            let after = Snapshot {
                files: after.clone(),
                ..host()
            };
            Snapshot::diff(&before, &after)
        };
        assert_eq!(
            diff(&before, &after),
            [
                "file under the store: images",
                "file under the store: images/abc",
                "file under the store: images/abc/layer.tar",
                "file under the store: overlay",
                "file under the store: overlay/ab12",
                "file under the store: overlay/ab12/upper",
            ]
        );
        // What the preparatory commands made is in the snapshot before the last one.
        std::fs::create_dir_all(root.join("containers/cd34")).unwrap();
        assert_eq!(
            diff(&after, &store_files(root)),
            [
                "file under the store: containers",
                "file under the store: containers/cd34",
            ]
        );
    }

    #[test]
    fn a_long_list_of_files_is_cut_short() {
        let mut after = host();
        after
            .files
            .extend((0..25).map(|i| PathBuf::from(format!("rootfs/f{i:02}"))));
        let diff = Snapshot::diff(&host(), &after);
        assert_eq!(diff.len(), FILES_SHOWN + 1);
        assert_eq!(diff[0], "file under the store: rootfs/f00");
        assert_eq!(diff[FILES_SHOWN], "file under the store: … and 5 more");
    }

    #[test]
    fn mountinfo_lines_parse_with_escapes_and_optional_fields() {
        let line = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:2 - overlay \
                    none rw";
        assert_eq!(
            parse_mountinfo(line),
            Some(mount("/mnt/with space", "overlay"))
        );
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let mut fields = vec!["0"; 50];
        fields[0] = "S";
        fields[1] = "1";
        fields[6] = "4194560";
        fields[19] = "123456";
        let line = format!("42 (a (weird) name) {}", fields.join(" "));
        let stat = Stat::parse(&line).unwrap();
        assert_eq!((stat.state, stat.ppid, stat.start), ('S', 1, 123456));
        assert!(!stat.kernel_thread());
    }

    /// Needs root: mounts a tmpfs and sees the diff report it, then unmounts it.
    #[test]
    fn a_real_mount_shows_in_the_diff() {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped a_real_mount_shows_in_the_diff: mounting needs root");
            return;
        }
        let dir = tempfile::Builder::new()
            .prefix("skiff-leak-test-")
            .tempdir()
            .unwrap();
        let target = dir.path().to_path_buf();
        let before = Snapshot::take(dir.path());
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "none"])
            .arg(&target)
            .status()
            .unwrap();
        assert!(mounted.success());
        let left = left_behind(&before, dir.path(), Duration::ZERO);
        let unmounted = std::process::Command::new("umount")
            .arg(&target)
            .status()
            .unwrap();
        assert!(unmounted.success());
        assert!(
            left.contains(&format!("mount: {} (tmpfs)", target.display())),
            "{left:?}"
        );
    }
}
