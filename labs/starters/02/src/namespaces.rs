//! Stage 02's idea, yours to write: a process that sees only its own world. Each piece writes
//! down in the [`Plan`] what the child will do between clone and exec; stage 01's launch carries
//! it out. Fill them in this order, running the check named in each after it (book: chapter 2,
//! "Build it yourself"):
//!
//! 1. [`namespaces`]          — `labs check 02 --bin ./target/debug/my-skiff-02 command-is-pid-1`
//! 2. [`pivot_root`]          — `... escape`
//! 3. [`mount_kernel_views`]  — `... ps-shows-only`, `... dev-`
//! 4. [`set_hostname`]        — `... hostname-is-private`
//!
//! Lab 02 checks more than these four (capabilities, seccomp, users, `--init`...): the chapter
//! takes them one section at a time, and you add them as features of your own.
//!
//! namespaces(7), clone(2), pivot_root(2), mount(2), sethostname(2).
// Until a piece is written its arguments go unused.
#![allow(unused_variables)]

use chroot::Plan;

/// The namespaces every container is born in: the `CLONE_NEW*` flags of clone(2) in
/// `plan.clone_flags`, one for each of PID, UTS, IPC, mount, network and cgroup.
///
/// Book: chapter 2, "What a namespace is".
pub fn namespaces(plan: &mut Plan) -> anyhow::Result<()> {
    todo!(
        "namespaces() in src/namespaces.rs: the CLONE_NEW* flags a container is born with (book: chapter 2, \"What a namespace is\")"
    )
}

/// A root there is no way back from. In `plan.root_setup()`: make every mount private, so that
/// nothing the container mounts reaches the host, and bind-mount the root onto itself (pivot_root
/// wants a mount point). In `plan.change_root`: go into it, `pivot_root(".", ".")`, detach the
/// old root that now lies underneath, and go to `/`. Stage 01's chroot then steps aside.
///
/// Book: chapter 2, "A root you cannot climb out of: pivot_root".
pub fn pivot_root(plan: &mut Plan) -> anyhow::Result<()> {
    todo!(
        "pivot_root() in src/namespaces.rs: make mounts private, bind the root onto itself, pivot_root into it (book: chapter 2, \"A root you cannot climb out of: pivot_root\")"
    )
}

/// The kernel's views, mounted into the new root (`plan.in_root("/proc")`...) in
/// `plan.root_setup()`: a fresh `proc`, `sysfs` read-only, and a minimal `/dev` on a tmpfs
/// (null, zero, full, random, urandom, tty, a `devpts` for pts, a tmpfs for shm).
///
/// Book: chapter 2, "A root you cannot climb out of: pivot_root", step 3.
pub fn mount_kernel_views(plan: &mut Plan) -> anyhow::Result<()> {
    todo!(
        "mount_kernel_views() in src/namespaces.rs: /proc, /sys and a minimal /dev in the new root (book: chapter 2, \"A root you cannot climb out of: pivot_root\", step 3)"
    )
}

/// The container's own hostname: a `Step::Hostname` in `plan.after_root`, set in its own UTS
/// namespace.
///
/// Book: chapter 2, "What a namespace is".
pub fn set_hostname(plan: &mut Plan, name: &str) -> anyhow::Result<()> {
    todo!(
        "set_hostname() in src/namespaces.rs: --hostname, in the container's UTS namespace (book: chapter 2, \"What a namespace is\")"
    )
}
