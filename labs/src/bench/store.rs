//! A stage's store between runs: the containers a run left behind, and the processes still
//! working for them.
//!
//! From stage 07 on, a container outlives the command that started it. `run -d` returns as soon
//! as its container runs, and its monitor, a process of its own, goes on to wait for the
//! container, remove it (`--rm`) and exit. Even `run --rm` in the foreground returns a moment
//! before its monitor has exited. So after every run of a stage, untimed, the harness waits
//! until the store holds no container that the run added and no process runs one of the
//! stage's programs (`skiff`, `skiff-pump`): the next run must not share the machine with this
//! one's tail, and nothing may be left at the end. What is still there after the timeout is
//! removed with `rm -f`, and the contestant fails. For stages 01 to 06, whose containers end
//! with their command, the wait ends at once. See proc(5) for `/proc/PID/exe` and `comm`.
//!
//! One process does not count between runs: a monitor whose work is done and which only waits
//! out its linger (it names itself `skiff-linger`), keeping the default bridge and skiff's
//! parent cgroup for a next container a moment longer. Waiting for it would time every run
//! against a bridge made afresh, which a burst of runs never sees (and docker's `docker0`,
//! the row beside it, never goes). It does count at the end: [`Store::clear`] waits for it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A stage binary's store and programs.
#[derive(Debug, Clone)]
pub struct Store {
    /// The stage binary (`…/dist/skiff`).
    pub program: PathBuf,
    /// Its state root (`SKIFF_ROOT`).
    pub root: PathBuf,
}

/// The containers in a store at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(BTreeSet<String>);

impl Store {
    /// The containers the store holds now: the entries of `ROOT/containers`.
    pub fn snapshot(&self) -> Snapshot {
        let entries = std::fs::read_dir(self.root.join("containers"));
        Snapshot(
            entries
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect(),
        )
    }

    /// The containers that are here now and were not in `before`.
    pub fn added_since(&self, before: &Snapshot) -> Vec<String> {
        self.snapshot().0.difference(&before.0).cloned().collect()
    }

    /// The processes running one of the stage's programs: the binary itself or a sibling named
    /// after it (`skiff-pump` beside `skiff`).
    pub fn processes(&self) -> Vec<i32> {
        let (Some(dir), Some(name)) = (self.program.parent(), self.program.file_name()) else {
            return Vec::new();
        };
        let name = name.to_string_lossy();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
                let exe = std::fs::read_link(entry.path().join("exe")).ok()?;
                is_program_of(&exe, dir, &name).then_some(pid)
            })
            .collect()
    }

    /// The processes of [`Store::processes`] that still work: not a monitor that only waits
    /// out its linger (see the module's notes).
    pub fn working(&self) -> Vec<i32> {
        self.processes()
            .into_iter()
            .filter(|pid| !is_lingering(*pid))
            .collect()
    }

    /// Waits until the store holds no container that was not in `before` and no process runs
    /// the stage's programs but lingering monitors. On timeout, removes what is left and says
    /// what it was.
    pub fn settle(&self, before: &Snapshot, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let added = self.added_since(before);
            let processes = self.working();
            if added.is_empty() && processes.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.remove(&added);
                return Err(format!(
                    "{:.0} s after the command returned, {} container(s) and {} process(es) \
                     of it were still there (removed)",
                    timeout.as_secs_f64(),
                    added.len(),
                    processes.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes containers with `rm -f`, then waits a little for their monitors to go.
    pub fn remove(&self, ids: &[String]) {
        for id in ids {
            let _ = Command::new(&self.program)
                .env("SKIFF_ROOT", &self.root)
                .envs(super::prepare::NOT_A_CLIENT)
                .args(["rm", "-f", id])
                .output();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// At the end: removes every container left in the store. Returns what is still there.
    pub fn clear(&self) -> Vec<String> {
        let left = self.added_since(&Snapshot::default());
        if left.is_empty() && self.processes().is_empty() {
            return Vec::new();
        }
        self.remove(&left);
        let mut warnings: Vec<String> = self
            .added_since(&Snapshot::default())
            .into_iter()
            .map(|id| format!("container {id} in {}", self.root.display()))
            .collect();
        warnings.extend(
            self.processes()
                .into_iter()
                .map(|pid| format!("process {pid} of {}", self.program.display())),
        );
        warnings
    }
}

/// What stage 07's monitor calls itself while it only lingers (`skiff::monitor::LINGERING`).
const LINGERING: &str = "skiff-linger";

/// Whether process `pid` is a monitor that only lingers: its `comm` says so.
fn is_lingering(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end() == LINGERING)
}

/// Whether `exe` (a `/proc/PID/exe` link) is `NAME` or `NAME-*` in `dir`; a binary rebuilt
/// since it started reads `… (deleted)`.
fn is_program_of(exe: &Path, dir: &Path, name: &str) -> bool {
    let text = exe.to_string_lossy();
    let exe = Path::new(text.strip_suffix(" (deleted)").unwrap_or(&text));
    let Some(file) = exe.file_name().map(|f| f.to_string_lossy()) else {
        return false;
    };
    exe.parent() == Some(dir)
        && (file == name
            || file
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stages_programs_are_the_binary_and_its_siblings() {
        let dir = Path::new("/t/release");
        assert!(is_program_of(Path::new("/t/release/skiff"), dir, "skiff"));
        assert!(is_program_of(
            Path::new("/t/release/skiff-pump"),
            dir,
            "skiff"
        ));
        assert!(is_program_of(
            Path::new("/t/release/skiff-pump (deleted)"),
            dir,
            "skiff"
        ));
        assert!(!is_program_of(Path::new("/t/release/skiffy"), dir, "skiff"));
        assert!(!is_program_of(Path::new("/usr/bin/skiff"), dir, "skiff"));
        assert!(!is_program_of(Path::new("/t/release/images"), dir, "skiff"));
    }

    #[test]
    fn added_containers_are_those_not_in_the_snapshot() {
        let root = tempfile::tempdir().unwrap();
        let store = Store {
            program: PathBuf::from("/nonexistent/release/skiff"),
            root: root.path().to_path_buf(),
        };
        assert_eq!(
            store.snapshot(),
            Snapshot::default(),
            "no containers dir yet"
        );
        std::fs::create_dir_all(root.path().join("containers/old")).unwrap();
        let before = store.snapshot();
        std::fs::create_dir_all(root.path().join("containers/new")).unwrap();
        assert_eq!(store.added_since(&before), ["new"]);
        assert!(store.processes().is_empty());
        assert_eq!(store.settle(&store.snapshot(), Duration::ZERO), Ok(()));
    }
}
