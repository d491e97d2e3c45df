//! The launch sequence: how a container process comes to life, and the hooks stages plug into.
//!
//! ```text
//!  parent (the engine)                         child
//!  ───────────────────                         ─────
//!  Feature::prepare   (write the Plan)
//!  clone3(CLONE_NEW* from the plan) ─────────▶ reset signals
//!  Feature::started   (pid known)              early steps (meanwhile)
//!                                              WaitForParent  ◀── blocks
//!  write "go" ─────────────────────────────────▶ steps: before_root, change_root, after_root
//!                                              chdir(workdir)
//!  read error pipe ◀── EOF on a successful ─── execve(command)
//!  wait for exit        exec (close-on-exec)
//!  Feature::exited, Feature::cleanup
//! ```
//!
//! See clone(2) (`clone3`), execve(2), pipe(2), wait(2).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{FeatureError, LaunchError};
use crate::plan::{Plan, Step, cstr};
use crate::process::{Process, c_strings};
use crate::signals::Forwarder;

// ANCHOR: slot
/// The fixed points of the launch sequence where features plug in, in the order they prepare
/// (they clean up in the reverse order). The order is the one rule every stage relies on: an
/// image's overlay exists before the root is changed into it, `/sys` is mounted before the
/// cgroup's view goes over it, every mount is made before the root turns read-only, the
/// hostname is set while the capability to do so is still there. Features that share a slot
/// keep the order they were added in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The container's state directory (stage 02): made first, removed last.
    State,
    /// What the root is made of when it is more than a directory: an image's layers, stacked
    /// by overlayfs (stage 04).
    Image,
    /// New namespaces, and a user namespace's id maps (stage 02).
    Namespaces,
    /// The change of root: chroot (stage 01), or pivot_root after `/proc`, `/sys` and `/dev`
    /// are mounted (stage 02).
    Root,
    /// The cgroup (stage 03), whose `/sys/fs/cgroup` view goes over `/sys`.
    Cgroup,
    /// Volumes, bind mounts and tmpfs (stage 06), mounted into the root.
    Volumes,
    /// The root made read-only (stage 06), after every mount into it.
    Seal,
    /// The network (stage 05): a veth or macvlan moved into the child's network namespace.
    Network,
    /// The hostname (stage 02), set while the child may still do so.
    Hostname,
    /// User, groups, capabilities and no_new_privs (stage 02): the last change of credentials.
    Privileges,
    /// What runs as PID 1 (stage 02's `--init`).
    Init,
    /// The container's stdin, stdout and stderr, or its terminal (stage 07).
    Stdio,
}
// ANCHOR_END: slot

// ANCHOR: feature
/// A piece of isolation that plugs into the launch sequence. Each stage contributes features;
/// the binary of stage N runs the features of stages 1 to N, in the order of their slots.
pub trait Feature {
    /// A short name for errors ("namespaces", "cgroup").
    fn name(&self) -> &'static str;

    /// Where in the launch sequence it plugs in.
    fn slot(&self) -> Slot;

    /// In the parent, before the child exists: create host-side things and write down the
    /// child's steps in `plan`.
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError>;

    /// In the parent, once the child exists but before it runs its steps (it waits for the
    /// go-ahead): put it in a cgroup, write its uid map, give it a network.
    fn started(&mut self, _child: &Started) -> Result<(), FeatureError> {
        Ok(())
    }

    /// In the parent, after the command exited: read counters, add notes to the exit.
    fn exited(&mut self, _exit: &mut Exit) {}

    /// In the parent, always last, also after a failed start: remove what `prepare` made.
    fn cleanup(&mut self) -> Result<(), FeatureError> {
        Ok(())
    }

    /// Before `prepare`: the container outlives this run of its command (stage 07), so
    /// `cleanup` must leave what a later start of the same container needs: its state
    /// directory, its writable layer, its volumes. Only removing the container removes those.
    fn keep(&mut self) {}

    /// Before `prepare`, when another process has time on its hands (stage 07's double fork
    /// has one): host work of this feature's that the other process may do first, beside the
    /// engine's own preparing, for the feature to find done. The job must be harmless beside
    /// this feature's own hooks, and the feature must then take over what it finds, whether
    /// the job did all of its work, part of it or none. The caller sees to it that the job
    /// has ended, or will never run, before the features act on the child (`started`) and
    /// before a failed launch cleans up (see [`crate::ahead::settle`]). `None`: nothing to
    /// do ahead.
    fn ahead(&mut self) -> Option<AheadJob> {
        None
    }
}
// ANCHOR_END: feature

/// Work a feature hands to another process: see [`Feature::ahead`].
pub type AheadJob = Box<dyn FnOnce() + Send>;

/// A child that exists and waits for the go-ahead.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// Its process id, as the host sees it.
    pub pid: Pid,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit status, when it exited.
    pub status: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// Things a feature learned about the end ("killed by the OOM killer").
    pub notes: Vec<String>,
    /// The kernel's OOM killer killed a process of the container (set by stage 03's cgroup).
    pub oom_killed: bool,
    /// Cleanup that failed: something may be left on the host.
    pub warnings: Vec<String>,
}

impl Exit {
    /// The code the engine exits with: the command's own, or 128 + N for death by signal N, as a
    /// shell reports it.
    pub fn code(&self) -> i32 {
        match (self.status, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 125,
        }
    }
}

/// The child's report when a step fails: which step, and the errno.
const REPORT_LEN: usize = 8;
/// The step index that means "execve failed".
const EXEC_STEP: u32 = u32::MAX;
/// The "step index" of [`Step::Reborn`]'s report: the number after it is a pid, not an errno.
const REBORN: u32 = u32::MAX - 1;

/// What the child needs to exec the command, as C data prepared in the parent.
pub struct ExecData {
    candidates: Vec<CString>,
    /// Kept alive because `argv_ptrs` points into it.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Kept alive because `envp_ptrs` points into it.
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecData {
    /// The command of `process`, or the program `init` names with the command as its last
    /// arguments (see [`Plan::exec_init`]).
    fn new(process: &Process, init: &[String]) -> Result<Self, LaunchError> {
        let (argv, candidates) = match init.first() {
            Some(program) => {
                let argv: Vec<String> = init.iter().chain(&process.args).cloned().collect();
                (c_strings(&argv)?, c_strings(std::slice::from_ref(program))?)
            }
            None => (
                c_strings(&process.args)?,
                c_strings(&process.exec_candidates())?,
            ),
        };
        let envp = c_strings(&process.env)?;
        let argv_ptrs = argv
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp_ptrs = envp
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        Ok(ExecData {
            candidates,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
        })
    }
}

/// The argument block of clone3(2), `struct clone_args` from `<linux/sched.h>`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3(2) without a new stack: like fork(2), but taking `CLONE_NEW*` flags. Returns
/// `Some(pid)` in the parent and `None` in the child, which must then keep to system calls until
/// it execs or exits. Unlike glibc's `fork`, it runs no atfork handlers and takes no locks, so
/// it is also safe to call from a child between clone and exec (stage 02's init does).
pub fn clone3(flags: u64) -> Result<Option<Pid>, Errno> {
    clone3_into(flags, None)
}

/// The `CLONE_INTO_CGROUP` flag of clone3(2) (Linux 5.7); the libc crate has it for glibc only.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// [`clone3`], the child born in the cgroup v2 directory `cgroup` when given: it never runs
/// a moment outside it, and no write to `cgroup.procs` is needed.
pub fn clone3_into(flags: u64, cgroup: Option<libc::c_int>) -> Result<Option<Pid>, Errno> {
    // A sibling (`CLONE_PARENT`) signals the parent as its creator does: clone3 wants no
    // exit signal of its own then.
    let sibling = flags & libc::CLONE_PARENT.unsigned_abs() as u64 != 0;
    let mut args = CloneArgs {
        flags,
        exit_signal: if sibling { 0 } else { libc::SIGCHLD as u64 },
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = u64::try_from(fd).map_err(|_| Errno::EBADF)?;
    }
    // SAFETY: clone3 with no stack behaves like fork(2): the child continues on a copy of this
    // thread's stack. The caller keeps the child to system calls on prepared data.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(rc)? {
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(
            libc::pid_t::try_from(pid).map_err(|_| Errno::EOVERFLOW)?,
        ))),
    }
}

// ANCHOR: cores
/// Where the child runs until it execs. A new process is queued on its parent's core, and runs
/// there once the parent sleeps; but right after the clone the parent has work of its own (the
/// features' `started`: stage 03 makes the cgroup then), and the child has its mounts. So the
/// parent moves the child off its own core before it ever runs, and the child, once its steps
/// are done and just before it execs, takes back every core the engine had. See sched(7),
/// sched_setaffinity(2).
pub struct Cores {
    /// The engine's cores, when there is another than the one it runs on.
    ours: Option<nix::sched::CpuSet>,
}

impl Cores {
    /// The cores this process may run on, read before the clone.
    pub fn ours() -> Cores {
        let ours = nix::sched::sched_getaffinity(Pid::from_raw(0))
            .ok()
            .filter(|set| {
                (0..nix::sched::CpuSet::count())
                    .filter(|&core| set.is_set(core).unwrap_or(false))
                    .nth(1)
                    .is_some()
            });
        Cores { ours }
    }

    /// In the parent: lets `child` run anywhere but on the core the parent is on now.
    pub fn move_off_ours(&self, child: Pid) {
        let Some(ours) = &self.ours else {
            return;
        };
        // SAFETY: sched_getcpu(3) only reads which core the caller runs on.
        let here = unsafe { libc::sched_getcpu() };
        let mut elsewhere = *ours;
        if usize::try_from(here).is_ok_and(|core| elsewhere.unset(core).is_ok()) {
            let _ = nix::sched::sched_setaffinity(child, &elsewhere);
        }
    }

    /// In the child, before exec: every core the engine had. One system call on data made
    /// before the clone.
    pub fn restore(&self) {
        self.give_back(Pid::from_raw(0));
    }

    /// Lets process `pid` (0: this one) run on every core this process could when
    /// [`Cores::ours`] looked.
    pub fn give_back(&self, pid: Pid) {
        if let Some(ours) = &self.ours {
            let _ = nix::sched::sched_setaffinity(pid, ours);
        }
    }
}
// ANCHOR_END: cores

/// A container whose command is running.
pub struct Running<'a> {
    pid: Pid,
    features: &'a mut [Box<dyn Feature>],
}

/// Launches `process` with `features` and waits for it to end.
pub fn run(process: &Process, features: &mut [Box<dyn Feature>]) -> Result<Exit, LaunchError> {
    spawn(process, features)?.wait()
}

/// Only root may change root, make namespaces and cgroups: an engine run by anyone else says
/// so, before it touches its store (whose path could then be all that its message names).
pub fn require_root() -> Result<(), LaunchError> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        Ok(())
    } else {
        Err(LaunchError::NotRoot { uid: uid.as_raw() })
    }
}

// ANCHOR: own_binary
/// The program to run to start skiff again (a monitor, an exec helper, a DNS server): this
/// process's own binary. Its path is not enough: when the file was replaced since this process
/// started (`cargo build`, a package upgrade), `/proc/self/exe` reads `PATH (deleted)`, a name
/// that exists nowhere, and the path, if it names anything, names another build, which may
/// not speak this one's protocol with its helpers. `/proc/self/exe` itself still opens the
/// binary this process runs, deleted or not (proc(5)), and a child forked to exec it has the
/// same one: so the path while it is still this binary, else `/proc/self/exe`.
pub fn own_binary() -> std::path::PathBuf {
    let link = std::path::PathBuf::from("/proc/self/exe");
    let same = |path: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(path), std::fs::metadata(&link)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    };
    match std::fs::read_link(&link) {
        Ok(path) if same(&path) => path,
        _ => link,
    }
}
// ANCHOR_END: own_binary

// ANCHOR: spawn
/// Starts the container and returns once its command has been exec'd (or failed to be).
pub fn spawn<'a>(
    process: &Process,
    features: &'a mut [Box<dyn Feature>],
) -> Result<Running<'a>, LaunchError> {
    process.validate()?;
    require_root()?;

    // 1. Every feature writes down its part of the plan, in the order of the slots (a stable
    // sort: features of one slot keep their order).
    features.sort_by_key(|feature| feature.slot());
    let mut plan = Plan::default();
    for index in 0..features.len() {
        if crate::timeline::enabled() {
            crate::timeline::mark(&format!("prepare {}", features[index].name()));
        }
        if let Err(source) = features[index].prepare(&mut plan) {
            let feature = features[index].name();
            // A namespace on its way is let go first (its maker's message read), then the
            // process making it is waited for to its end: nothing it does runs beside the
            // cleanup.
            drop(plan.network_ahead.take());
            crate::ahead::settle();
            cleanup_all(&mut features[..=index]);
            return Err(LaunchError::Feature { feature, source });
        }
    }
    // A process offered to make a network namespace and not asked (stage 07's) is let go, once
    // it has ended.
    crate::ahead::settle();
    crate::timeline::mark("clone");
    let network = plan.network_ahead.take();
    match start_child(process, &plan, features, network) {
        Ok(pid) => Ok(Running { pid, features }),
        Err(err) => {
            crate::ahead::settle();
            cleanup_all(features);
            Err(err)
        }
    }
}
// ANCHOR_END: spawn

fn start_child(
    process: &Process,
    plan: &Plan,
    features: &mut [Box<dyn Feature>],
    network: Option<crate::ahead::NetworkAhead>,
) -> Result<Pid, LaunchError> {
    // 2. Everything the child touches is prepared now, before the clone.
    let exec = ExecData::new(process, &plan.exec_init)?;
    let (go_read, go_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let wait = Step::WaitForParent(go_read.as_raw_fd());
    let chdir = Step::Chdir(cstr(&process.cwd)?);
    let steps: Vec<Step> = if plan.waits_only_to_exec() {
        plan.steps_before_go()
            .chain(plan.steps_after_go())
            .cloned()
            .chain([chdir, wait])
            .collect()
    } else {
        plan.steps_before_go()
            .cloned()
            .chain([wait])
            .chain(plan.steps_after_go().cloned())
            .chain([chdir])
            .collect()
    };
    // 3. The clone. From here until execve, the child runs `child_main` only.
    let (flags, entered) = born_in(plan, network);
    let cores = Cores::ours();
    let pid = match clone3_into(flags, plan.cgroup_fd) {
        Ok(None) => child_main(&steps, &exec, plan, &cores, err_write.as_raw_fd()),
        Ok(Some(pid)) => {
            cores.move_off_ours(pid);
            pid
        }
        Err(errno) => {
            return Err(LaunchError::Sys {
                call: "clone3",
                errno,
            });
        }
    };
    if let Some(entered) = entered
        && let Err(errno) = entered.leave()
    {
        // The engine would go on in the container's network: stop here.
        kill_and_reap(pid);
        return Err(LaunchError::Sys {
            call: "setns back to the engine's network namespace",
            errno,
        });
    }
    drop(go_read);
    drop(err_write);
    let pid = if plan.steps_before_go().any(|s| matches!(s, Step::Reborn)) {
        reborn_pid(process, plan, &steps, pid, &err_read)?
    } else {
        pid
    };

    // 4. The child waits; the features that act on it from outside do so now. When one fails
    // and the child has already reported a failed early step, that step is the real cause.
    crate::timeline::mark("cloned");
    // Whatever another process did ahead for the features is done before they act.
    crate::ahead::settle();
    let started = Started { pid };
    for feature in features.iter_mut() {
        if let Err(source) = feature.started(&started) {
            kill_and_reap(pid);
            if let Some((index, errno)) = read_report(&err_read) {
                return Err(child_error(process, plan, &steps, index, errno));
            }
            return Err(LaunchError::Feature {
                feature: feature.name(),
                source,
            });
        }
    }

    // 5. Go. The error pipe then reads end-of-file when execve succeeded (the pipe is
    // close-on-exec), or the child's report when something failed. A child that failed an
    // early step has exited already: the go-ahead finds no reader, and its report says why.
    crate::timeline::mark("go-ahead");
    let go = nix::unistd::write(&go_write, b"g");
    drop(go_write);
    if let Some((index, errno)) = read_report(&err_read) {
        kill_and_reap(pid);
        return Err(child_error(process, plan, &steps, index, errno));
    }
    match go {
        Ok(_) => Ok(pid),
        Err(errno) => {
            kill_and_reap(pid);
            Err(LaunchError::Sys {
                call: "write to the child",
                errno,
            })
        }
    }
}

// ANCHOR: born_in
/// The clone's flags, and where the engine stands for it: inside the network namespace made
/// ahead (see [`crate::ahead`]), with `CLONE_NEWNET` dropped from the flags, when the plan
/// still asks for a new one and there is no user namespace; else where it is, with the flags
/// as planned (the clone makes the namespace, as it would have anyway).
fn born_in(
    plan: &Plan,
    network: Option<crate::ahead::NetworkAhead>,
) -> (u64, Option<crate::ahead::Entered>) {
    let newnet = libc::CLONE_NEWNET.unsigned_abs() as u64;
    let newuser = libc::CLONE_NEWUSER.unsigned_abs() as u64;
    let flags = plan.clone_flags;
    let Some(network) = network else {
        return (flags, None);
    };
    if flags & newnet == 0 || flags & newuser != 0 || plan.user_namespace {
        // Dropped here, before the clone: its thread is waited for (see `NetworkAhead`).
        drop(network);
        return (flags, None);
    }
    match network
        .join()
        .and_then(|namespace| crate::ahead::Entered::enter(&namespace))
    {
        Ok(entered) => (flags & !newnet, Some(entered)),
        Err(_) => (flags, None),
    }
}
// ANCHOR_END: born_in

/// The child's report on the error pipe: the index of the step that failed and its errno, or
/// `None` at end-of-file (the child exec'd, or died without a word).
fn read_report(err_read: &OwnedFd) -> Option<(u32, Errno)> {
    read_raw_report(err_read).map(|(index, number)| (index, Errno::from_raw(number)))
}

/// The report's two numbers as they were written.
fn read_raw_report(err_read: &OwnedFd) -> Option<(u32, i32)> {
    let mut report = [0u8; REPORT_LEN];
    if read_full(err_read, &mut report) == 0 {
        return None;
    }
    let index = u32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
    let number = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
    Some((index, number))
}

// ANCHOR: reborn
/// After a [`Step::Reborn`]: the pid of the process the child forked, which goes on in its
/// place (a child of ours too, by `CLONE_PARENT`). The child itself has exited and is reaped.
fn reborn_pid(
    process: &Process,
    plan: &Plan,
    steps: &[Step],
    child: Pid,
    err_read: &OwnedFd,
) -> Result<Pid, LaunchError> {
    let report = read_raw_report(err_read);
    let _ = waitpid(child, None);
    match report {
        Some((REBORN, pid)) => Ok(Pid::from_raw(pid)),
        Some((index, errno)) => Err(child_error(
            process,
            plan,
            steps,
            index,
            Errno::from_raw(errno),
        )),
        None => Err(LaunchError::Sys {
            call: "the child's report",
            errno: Errno::ECHILD,
        }),
    }
}

/// In the child: forks the process that goes on, as a sibling (`CLONE_PARENT`), reports its pid
/// as [`REBORN`], and exits. Returns in the new process only.
fn reborn(report_fd: libc::c_int, index: u32) {
    let flags = libc::CLONE_PARENT.unsigned_abs() as u64;
    match clone3(flags) {
        Ok(None) => {}
        Ok(Some(pid)) => report_and_exit(report_fd, REBORN, pid.as_raw(), 0),
        Err(errno) => report_and_exit(report_fd, index, errno as i32, 125),
    }
}
// ANCHOR_END: reborn

/// Turns the child's report into an error that names what failed.
fn child_error(
    process: &Process,
    plan: &Plan,
    steps: &[Step],
    index: u32,
    errno: Errno,
) -> LaunchError {
    // What the child exec'd: the init when there is one, otherwise the command.
    let command = plan
        .exec_init
        .first()
        .or(process.args.first())
        .cloned()
        .unwrap_or_default();
    if index == EXEC_STEP {
        return match errno {
            Errno::ENOENT | Errno::ENOTDIR => LaunchError::NotFound { command },
            errno => LaunchError::CannotExecute { command, errno },
        };
    }
    match steps.get(index as usize) {
        Some(step) => LaunchError::Child {
            step: step.to_string(),
            errno,
            hint: step.hint(errno),
        },
        None => LaunchError::Sys {
            call: "the child's report",
            errno,
        },
    }
}

// ANCHOR: child
/// The child, between clone and exec. No allocation, no locks, no printing: only system calls
/// on data the parent prepared.
fn child_main(
    steps: &[Step],
    exec: &ExecData,
    plan: &Plan,
    cores: &Cores,
    report_fd: libc::c_int,
) -> ! {
    crate::pgo::forked();
    reset_signals();
    for (index, step) in steps.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(0);
        if matches!(step, Step::Reborn) {
            reborn(report_fd, index);
            continue;
        }
        if let Err(errno) = step.run() {
            report_and_exit(report_fd, index, errno as i32, 125);
        }
    }
    // The command may run on every core the engine may (see `Cores`).
    cores.restore();
    // Every descriptor but 0, 1, 2 (and those the plan passes on) closes at exec: the command
    // starts with those three only.
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32.saturating_add(plan.pass_fds),
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match plan.exec_with {
        Some(custom) => custom(exec, report_fd),
        None => exec_command(exec, report_fd),
    }
}

/// Replaces this process with the command: tries each `PATH` candidate as execvp(3) does.
/// Only returns by exiting: 126 when a candidate exists but cannot run, 127 when none exists,
/// after reporting the errno on `report_fd`. Safe between clone and exec.
pub fn exec_command(exec: &ExecData, report_fd: libc::c_int) -> ! {
    crate::pgo::dump();
    let mut denied = false;
    for candidate in &exec.candidates {
        // SAFETY: path, argv and envp are NUL-terminated C strings and NULL-terminated arrays
        // built before the clone; execve only returns on failure.
        unsafe {
            libc::execve(
                candidate.as_ptr(),
                exec.argv_ptrs.as_ptr(),
                exec.envp_ptrs.as_ptr(),
            )
        };
        match Errno::last() {
            // Not here: try the next directory of PATH, as execvp(3) does.
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => denied = true,
            errno => report_and_exit(report_fd, EXEC_STEP, errno as i32, 126),
        }
    }
    if denied {
        report_and_exit(report_fd, EXEC_STEP, Errno::EACCES as i32, 126)
    }
    report_and_exit(report_fd, EXEC_STEP, Errno::ENOENT as i32, 127)
}
// ANCHOR_END: child

/// Restores default signal handling: the engine may block or ignore signals (Rust ignores
/// SIGPIPE), and blocked or ignored signals survive execve.
fn reset_signals() {
    // SAFETY: sigaction and sigprocmask with zeroed, fully initialised structs are
    // async-signal-safe; failures (for SIGKILL/SIGSTOP) are expected and harmless.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in 1..libc::SIGRTMIN() {
            libc::sigaction(signal, &default, std::ptr::null_mut());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Sends the parent the failed step's index and errno, then exits with `code`. Safe between
/// clone and exec.
fn report_and_exit(fd: libc::c_int, index: u32, number: i32, code: i32) -> ! {
    let mut report = [0u8; REPORT_LEN];
    report[..4].copy_from_slice(&index.to_ne_bytes());
    report[4..].copy_from_slice(&number.to_ne_bytes());
    // SAFETY: writes 8 bytes from a stack buffer; _exit ends the process without running any
    // of the parent's atexit handlers or destructors.
    unsafe {
        libc::write(fd, report.as_ptr().cast(), REPORT_LEN);
        libc::_exit(code)
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| LaunchError::Sys {
        call: "pipe2",
        errno,
    })
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match nix::unistd::read(fd, &mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    filled
}

fn kill_and_reap(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let _ = wait_for(pid);
}

fn wait_for(pid: Pid) -> Result<WaitStatus, LaunchError> {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(LaunchError::Sys {
                    call: "waitpid",
                    errno,
                });
            }
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(status),
            Ok(_) => continue,
        }
    }
}

fn cleanup_all(features: &mut [Box<dyn Feature>]) -> Vec<String> {
    let mut warnings = Vec::new();
    for feature in features.iter_mut().rev() {
        if let Err(err) = feature.cleanup() {
            warnings.push(format!("{}: cleanup: {err}", feature.name()));
        }
    }
    warnings
}

impl Running<'_> {
    /// The command's process id, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits for the command to end, then lets every feature see the exit and clean up.
    pub fn wait(self) -> Result<Exit, LaunchError> {
        let status = wait_for(self.pid);
        self.finish(status)
    }

    /// Like [`Running::wait`], forwarding the signals `forwarder` catches to the command.
    pub fn wait_forwarding(self, forwarder: &Forwarder) -> Result<Exit, LaunchError> {
        let status = loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    break Ok(status);
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    break Err(LaunchError::Sys {
                        call: "waitpid",
                        errno,
                    });
                }
            }
            if let Some(signal) = forwarder.next() {
                // The command may already be gone; the next waitpid tells.
                let _ = nix::sys::signal::kill(self.pid, signal);
            }
        };
        self.finish(status)
    }

    fn finish(self, status: Result<WaitStatus, LaunchError>) -> Result<Exit, LaunchError> {
        let mut exit = Exit {
            status: None,
            signal: None,
            notes: Vec::new(),
            oom_killed: false,
            warnings: Vec::new(),
        };
        match status {
            Ok(WaitStatus::Exited(_, code)) => exit.status = Some(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => exit.signal = Some(signal as i32),
            Ok(_) => {}
            Err(err) => {
                cleanup_all(self.features);
                return Err(err);
            }
        }
        for feature in self.features.iter_mut() {
            feature.exited(&mut exit);
        }
        exit.warnings = cleanup_all(self.features);
        Ok(exit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes the network namespace another process offers, as stage 02's feature does.
    struct TakesTheOffer;

    impl Feature for TakesTheOffer {
        fn name(&self) -> &'static str {
            "takes the offer"
        }
        fn slot(&self) -> Slot {
            Slot::Namespaces
        }
        fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
            plan.network_ahead = crate::ahead::NetworkAhead::start();
            Ok(())
        }
    }

    /// Fails in `prepare`, after [`TakesTheOffer`].
    struct FailsToPrepare;

    impl Feature for FailsToPrepare {
        fn name(&self) -> &'static str {
            "fails"
        }
        fn slot(&self) -> Slot {
            Slot::Cgroup
        }
        fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
            Err(FeatureError::with(
                "fail on purpose",
                std::io::Error::other("test"),
            ))
        }
    }

    /// A launch that fails after it took a namespace from another process returns only once
    /// that process has ended, with the work it does after sending (stage 07's jobs): a
    /// failed launch never cleans up beside it.
    #[test]
    fn a_failed_launch_waits_for_the_process_working_ahead() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: a launch needs root");
            return;
        }
        let _turn = crate::ahead::tests::TURN
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (done, other) = crate::ahead::tests::another_at_work(true);
        let mut features: Vec<Box<dyn Feature>> =
            vec![Box::new(FailsToPrepare), Box::new(TakesTheOffer)];
        let process = Process::new(vec!["/bin/true".into()]);
        let err = spawn(&process, &mut features)
            .err()
            .expect("the launch did not fail");
        assert!(
            matches!(
                err,
                LaunchError::Feature {
                    feature: "fails",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            "the launch returned while the other process was still at work"
        );
        other.join().unwrap();
    }

    /// The child runs off the parent's core until its steps are done, and execs with every
    /// core the engine had.
    #[test]
    fn a_child_moved_off_the_parents_core_gets_every_core_back() {
        let cores = Cores::ours();
        let Some(all) = cores.ours else {
            eprintln!("skipped: this process may run on one core only");
            return;
        };
        let count = |set: &nix::sched::CpuSet| {
            (0..nix::sched::CpuSet::count())
                .filter(|&core| set.is_set(core).unwrap_or(false))
                .count()
        };
        let (go_read, go_write) = pipe().unwrap();
        match clone3_into(0, None).unwrap() {
            None => {
                // The child: system calls only. Exit 0 when it was moved and then restored.
                let mut byte = [0u8; 1];
                let _ = nix::unistd::read(&go_read, &mut byte);
                let me = Pid::from_raw(0);
                let moved = nix::sched::sched_getaffinity(me).map(|set| count(&set));
                cores.restore();
                let back = nix::sched::sched_getaffinity(me).map(|set| count(&set));
                let ok = moved == Ok(count(&all) - 1) && back == Ok(count(&all));
                // SAFETY: _exit(2) ends the child without running the test harness's code.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            Some(pid) => {
                cores.move_off_ours(pid);
                nix::unistd::write(&go_write, b"g").unwrap();
                let status = nix::sys::wait::waitpid(pid, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
            }
        }
    }

    /// A child born in a cgroup v2 directory is there from its first instruction: its
    /// `/proc/PID/cgroup` says so before it has done anything.
    #[test]
    fn clone3_into_a_v2_cgroup() {
        let tree = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(std::path::Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.controllers").exists());
        let Some(tree) = tree else {
            eprintln!("skipped: no cgroup v2 tree mounted here");
            return;
        };
        let name = format!("skiff-clone3-test-{}", std::process::id());
        let dir = tree.join(&name);
        if let Err(e) = std::fs::create_dir(&dir) {
            eprintln!("skipped: cannot make {}: {e}", dir.display());
            return;
        }
        let fd = std::fs::File::open(&dir).unwrap();
        let pid = match clone3_into(0, Some(fd.as_raw_fd())) {
            // SAFETY: the child only waits for a signal, then exits.
            Ok(None) => unsafe {
                libc::pause();
                libc::_exit(0)
            },
            Ok(Some(pid)) => pid,
            Err(e) => panic!("clone3 into {}: {e}", dir.display()),
        };
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        std::fs::remove_dir(&dir).unwrap();
        assert!(
            cgroup.lines().any(|l| l == format!("0::/{name}")),
            "{cgroup}"
        );
    }
}
