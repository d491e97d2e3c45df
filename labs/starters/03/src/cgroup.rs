//! Stage 03's idea, yours to write: a cgroup of the container's own, which limits what it may use
//! and counts what it used. Fill the pieces in this order, running the check named in each after
//! it (book: chapter 3, "Build it yourself"):
//!
//! 1. [`parse_memory`]    — `labs check 03 --bin ./target/debug/my-skiff-03 bad-memory`,
//!    `... memory-below-floor`
//! 2. [`Cgroup::create`]  — nothing runs to the end yet: it is made, nobody is in it
//! 3. [`Cgroup::join`]    — `... pids-limit-contains`, `... memory-within-limit`
//! 4. [`Cgroup::remove`]  — `... cgroup-removed-after`; then make every container get a cgroup
//!    (`LimitFlags::asked` in `wiring.rs`) and take on the rest of the lab
//!
//! Lab 03 checks more than these four (the OOM note, the container's own view of
//! `/sys/fs/cgroup`, devices, `--cpus`, `--stats`...): the chapter takes them one at a time.
//!
//! This host may be cgroup v2, v1 or hybrid: look before you write (cgroups(7)).
// Until a piece is written its arguments go unused.
#![allow(unused_variables, dead_code)]

use std::path::PathBuf;

/// The limits the flags ask for, checked and in the kernel's units.
#[derive(Debug, Default)]
pub struct Limits {
    /// `--memory`, in bytes.
    pub memory: Option<u64>,
    /// `--pids-limit`: how many processes at most.
    pub pids: Option<u64>,
    /// `--cpus`: how many CPUs' worth of time.
    pub cpus: Option<f64>,
}

/// `--memory 64m`: a number and an optional unit (b, k, m, g) as Docker reads it, in bytes. A
/// value that does not parse, or is below Docker's minimum of 6 MiB, is an error that names the
/// flag and the value, before anything exists on the host.
///
/// Book: chapter 3, "Flags, units, and errors before anything exists".
pub fn parse_memory(text: &str) -> anyhow::Result<u64> {
    todo!(
        "parse_memory() in src/cgroup.rs: --memory's size, in bytes (book: chapter 3, \"Flags, units, and errors before anything exists\")"
    )
}

/// The container's cgroup: its directory in each hierarchy it is made in (one on a v2 host; one
/// per controller on v1).
#[derive(Debug)]
pub struct Cgroup {
    /// Where it is, on the host.
    pub dirs: Vec<PathBuf>,
}

impl Cgroup {
    /// Makes the cgroup of container `id` (a name the host can find it by, with `skiff` and the
    /// id in it) and writes `limits` into its files (`memory.max`, `pids.max`, `cpu.max` on v2).
    ///
    /// Book: chapter 3, "The feature: four hooks" and "Creating: the parent is shared".
    pub fn create(id: &str, limits: &Limits) -> anyhow::Result<Cgroup> {
        todo!(
            "Cgroup::create() in src/cgroup.rs: make the container's cgroup and write its limits (book: chapter 3, \"The feature: four hooks\")"
        )
    }

    /// Moves process `pid` (the container's first process, still waiting for the go-ahead)
    /// into the cgroup, so everything it starts counts there.
    ///
    /// Book: chapter 3, "The feature: four hooks".
    pub fn join(&self, pid: i32) -> anyhow::Result<()> {
        todo!(
            "Cgroup::join() in src/cgroup.rs: put the container's first process in its cgroup (book: chapter 3, \"The feature: four hooks\")"
        )
    }

    /// Removes the cgroup once the container has exited.
    ///
    /// Book: chapter 3, "Removing: a cgroup with processes cannot go".
    pub fn remove(&self) -> anyhow::Result<()> {
        todo!(
            "Cgroup::remove() in src/cgroup.rs: remove the container's cgroup (book: chapter 3, \"Removing: a cgroup with processes cannot go\")"
        )
    }
}
