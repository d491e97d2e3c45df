//! `probe`: the lab harness's eyes inside a container.
//!
//! Each subcommand observes one thing and prints it in a fixed, shell-free format, so a lab's
//! outcome never depends on a shell's quirks. The harness compiles this file on its own with
//! `rustc -C target-feature=+crt-static` (see `build.rs`) and copies the static binary into every
//! fixture rootfs, where no C library exists. It therefore uses the standard library only, and
//! declares the few C functions it needs itself.
//!
//! Run `probe help` for the list.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

#[allow(non_camel_case_types)]
type pid_t = i32;

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    rest: [i64; 14],
}

#[repr(C)]
struct Utsname {
    fields: [[u8; 65]; 6],
}

unsafe extern "C" {
    fn getpid() -> pid_t;
    fn getppid() -> pid_t;
    fn getuid() -> u32;
    fn getgid() -> u32;
    fn geteuid() -> u32;
    fn fork() -> pid_t;
    fn waitpid(pid: pid_t, status: *mut i32, options: i32) -> pid_t;
    fn kill(pid: pid_t, sig: i32) -> i32;
    fn chroot(path: *const std::ffi::c_char) -> i32;
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    fn uname(buf: *mut Utsname) -> i32;
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    fn signal(sig: i32, handler: extern "C" fn(i32)) -> usize;
    fn pause() -> i32;
    fn shmget(key: i32, size: usize, flags: i32) -> i32;
    fn shmctl(id: i32, cmd: i32, buf: *mut u8) -> i32;
    fn sched_getaffinity(pid: pid_t, size: usize, mask: *mut u64) -> i32;
    fn setrlimit(resource: i32, limit: *const [u64; 2]) -> i32;
    fn _exit(code: i32) -> !;
    fn pipe(fds: *mut i32) -> i32;
    #[link_name = "write"]
    fn write_fd(fd: i32, buf: *const u8, count: usize) -> isize;
    #[link_name = "read"]
    fn read_fd(fd: i32, buf: *mut u8, count: usize) -> isize;
    fn close(fd: i32) -> i32;
    fn syscall(number: i64, ...) -> i64;
    fn inotify_init1(flags: i32) -> i32;
    fn inotify_add_watch(fd: i32, path: *const std::ffi::c_char, mask: u32) -> i32;
    fn poll(fds: *mut PollFd, count: u64, timeout_ms: i32) -> i32;
}

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

const F_GETFD: i32 = 1;
const RUSAGE_SELF: i32 = 0;
const RLIMIT_CORE: i32 = 4;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return fail("usage: probe COMMAND [ARG...] (probe help lists them)");
    };
    let rest = &args[1..];
    match run(command, rest) {
        Ok(code) => ExitCode::from(code),
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("probe: {message}");
    ExitCode::from(1)
}

type Outcome = Result<u8, String>;

fn arg<'a>(args: &'a [String], index: usize, what: &str) -> Result<&'a str, String> {
    args.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument: {what}"))
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{what} must be a number, not {text:?}"))
}

fn out(text: impl AsRef<str>) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", text.as_ref());
    let _ = stdout.flush();
    Ok(0)
}

fn run(command: &str, args: &[String]) -> Outcome {
    match command {
        "help" => out(HELP),
        "echo" => out(args.join(" ")),
        "echo-err" => {
            eprintln!("{}", args.join(" "));
            Ok(0)
        }
        "exit" => number::<u8>(arg(args, 0, "code")?, "exit code"),
        "fault" => fault(arg(args, 0, "4, 5 or 11")?),
        "kill-self" => kill_self(number(arg(args, 0, "signal number")?, "signal")?),
        "pid" => out(pid().to_string()),
        "ppid" => {
            // SAFETY: getppid has no arguments and cannot fail.
            out(unsafe { getppid() }.to_string())
        }
        "cwd" => out(std::env::current_dir()
            .map_err(|e| format!("cwd: {e}"))?
            .display()
            .to_string()),
        "env" => env(args),
        "fds" => fds(),
        "ls" => ls(arg(args, 0, "path")?),
        "read" => read(arg(args, 0, "path")?),
        "write" => write(arg(args, 0, "path")?, &args[1..].join(" ")),
        "cat" => cat(),
        "escape" => escape(arg(args, 0, "marker path")?),
        "hostname" => out(hostname()),
        "uid" => uid(),
        "ns" => ns(args),
        "mounts" => mounts(),
        "caps" => caps(),
        "add-key" => add_key(),
        "cgroup" => read("/proc/self/cgroup"),
        "alloc" => alloc(parse_size(arg(args, 0, "size (16m)")?)?),
        "fork" => fork_many(number(arg(args, 0, "count")?, "count")?),
        "burn" => burn(parse_duration(arg(args, 0, "duration (500ms)")?)?),
        "cpus" => cpus(),
        "ps" => ps(),
        "zombies" => zombies(),
        "sleep" => {
            std::thread::sleep(parse_duration(arg(args, 0, "duration")?)?);
            Ok(0)
        }
        "trap" => trap(args),
        "orphans" => orphans(number(arg(args, 0, "count")?, "count")?),
        "shm" => shm(number(arg(args, 0, "key")?, "key")?),
        "shm-make" => shm_make(number(arg(args, 0, "key")?, "key")?),
        "shm-remove" => shm_remove(number(arg(args, 0, "key")?, "key")?),
        "stat" => stat(arg(args, 0, "path")?),
        "net" => net(),
        "addr" => addr(arg(args, 0, "interface")?),
        "gateway" => gateway(),
        "resolve" => resolve(arg(args, 0, "name")?).map(|ip| out(ip.to_string()))?,
        "listen" => listen(number(arg(args, 0, "port")?, "port")?, false),
        "serve" => listen(number(arg(args, 0, "port")?, "port")?, true),
        "connect" => connect(arg(args, 0, "host:port")?, &args[1..].join(" ")),
        "watch-exe" => watch_exe(parse_duration(arg(args, 0, "duration (10s)")?)?),
        "peer-serve" => peer_serve(number(arg(args, 0, "port")?, "port")?),
        "dns-answer" => dns_answer(arg(args, 0, "ip:port")?, arg(args, 1, "address")?),
        "dns-tcp" => dns_tcp(arg(args, 0, "server")?, arg(args, 1, "name")?),
        "swap-on-read" => swap_on_read(arg(args, 0, "file")?, arg(args, 1, "replacement")?),
        "i386" => i386(),
        other => Err(format!("unknown command {other:?} (probe help lists them)")),
    }
}

const HELP: &str = "\
probe: observe a container from inside. Commands:
  echo ARG...        print the arguments          echo-err ARG...   the same, on stderr
  exit N             exit with status N           cat               copy stdin to stdout
  fault 4|5|11       die by a signal the kernel forces (SIGILL, SIGTRAP, SIGSEGV): even PID 1 dies
  kill-self SIG      send signal SIG to itself; print 'survived' if still alive
  pid | ppid | cwd   print the process id, parent's id, working directory
  env [KEY]          print the environment sorted, or KEY's value
  fds                print the open file descriptors
  ls PATH | read PATH | write PATH TEXT | stat PATH
  escape MARKER      try the classic chroot escape; say whether MARKER is then visible
  hostname | uid | ns [KIND...] | mounts | caps | cgroup | cpus | net
  add-key            add a key to this process's keyring with add_key(2) (seccomp refuses it)
  ps | zombies       list processes (pid comm) / count zombie processes
  alloc SIZE         allocate and touch SIZE bytes (16m, 1g)
  fork N             start N children at once; report how many started
  burn DURATION      spin on the CPU for DURATION of wall time; print CPU time used
  sleep DURATION     sleep (500ms, 2s)
  trap SIG...        print 'ready', wait for one of the signals, print 'got SIGNAME'
  orphans N          leave N orphans that exit at once; then count zombies
  addr IFACE         print the interface's IPv4 address/prefix    gateway  the default route's
  resolve NAME       look NAME up in /etc/hosts (no DNS: the probe is static)
  listen PORT        print 'listening', answer one TCP connection, exit; serve PORT: answer forever
  connect HOST:PORT [TEXT]  send TEXT, print the answer ('hello from HOSTNAME: TEXT')
  shm KEY            say whether a SysV shared memory segment with KEY exists
  shm-make KEY | shm-remove KEY   create or remove such a segment
  peer-serve PORT    print 'listening', then answer each TCP connection on PORT with the address
                     it came from (what NAT made of the sender)
  dns-answer IP:PORT ADDR  (on the host) a fake upstream resolver on UDP IP:PORT: print
                     'answering', then answer every question with an A record of ADDR
  dns-tcp SERVER NAME  ask SERVER (port 53) for NAME's A records over TCP; print each address
  watch-exe DURATION print 'watching'; for DURATION, read /proc/PID/exe of each new process and
                     print 'caught PID' for one whose program is not in this root (CVE-2019-5736)
  swap-on-read FILE NEW  (on the host) print 'watching'; once FILE has been read and closed,
                     rename NEW over it and print 'swapped' (the build context race)
  i386               (x86_64) make two i386 system calls with int $0x80, as a 32-bit program
                     does: getpid, then unshare of a user namespace; print how each went";

/// What a 32-bit x86 program's system calls meet: `int $0x80` from this 64-bit process is the
/// i386 system-call gate, and the kernel (and a seccomp filter) sees `AUDIT_ARCH_I386` and
/// i386's numbers: getpid is 20, unshare 310. A filter that knows only x86_64 kills the first.
fn i386() -> Outcome {
    #[cfg(target_arch = "x86_64")]
    {
        /// One i386 system call with one argument; the kernel's answer (`-errno` on failure).
        fn int80(nr: u32, arg: u32) -> i32 {
            let mut eax = nr;
            // SAFETY: the i386 system-call gate: eax and ebx in, eax out; the kernel may clobber
            // r8-r11 (declared). rbx belongs to the compiler, so the argument is swapped in and
            // back out.
            unsafe {
                std::arch::asm!(
                    "xchg {arg}, rbx",
                    "int 0x80",
                    "xchg {arg}, rbx",
                    arg = inout(reg) u64::from(arg) => _,
                    inout("eax") eax,
                    out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                );
            }
            i32::from_ne_bytes(eax.to_ne_bytes())
        }
        let pid = int80(20, 0);
        if pid != self::pid() {
            return Err(format!("i386 getpid: answered {pid}, not {}", self::pid()));
        }
        out("i386 getpid: ok")?;
        const CLONE_NEWUSER: u32 = 0x1000_0000;
        match int80(310, CLONE_NEWUSER) {
            0 => out("i386 unshare(CLONE_NEWUSER): allowed"),
            err => out(format!(
                "i386 unshare(CLONE_NEWUSER): {}",
                std::io::Error::from_raw_os_error(-err)
            )),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    Err("i386 system calls exist only on x86_64".to_string())
}

/// The race of a time-of-check/time-of-use attack, made deterministic: inotify(7) reports the
/// moment a reader closes FILE (the engine has checked or hashed it), and REPLACEMENT (a
/// symlink to a host file, say) takes its place at once, before the engine opens it again.
fn swap_on_read(file: &str, replacement: &str) -> Outcome {
    const IN_CLOEXEC: i32 = 0o2_000_000;
    const IN_CLOSE_NOWRITE: u32 = 0x10;
    const POLLIN: i16 = 1;
    let path = CString::new(file).map_err(|_| "a path has no NUL bytes".to_string())?;
    // SAFETY: inotify_init1 takes flags only.
    let fd = unsafe { inotify_init1(IN_CLOEXEC) };
    // SAFETY: a NUL-terminated path that lives across the call.
    if fd < 0 || unsafe { inotify_add_watch(fd, path.as_ptr(), IN_CLOSE_NOWRITE) } < 0 {
        return Err(format!("watch {file}: {}", std::io::Error::last_os_error()));
    }
    out("watching")?;
    let mut poll_fd = PollFd {
        fd,
        events: POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd that lives across the call; a minute at most.
    if unsafe { poll(&mut poll_fd, 1, 60_000) } != 1 {
        return Err(format!("nobody read {file} within a minute"));
    }
    std::fs::rename(replacement, file)
        .map_err(|e| format!("rename {replacement} over {file}: {e}"))?;
    // SAFETY: the inotify descriptor opened above, closed once.
    unsafe { close(fd) };
    out("swapped")
}

fn pid() -> pid_t {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { getpid() }
}

fn fault(kind: &str) -> Outcome {
    // No core dumps from the lab.
    let zero = [0u64; 2];
    // SAFETY: setrlimit reads two u64s from a live array.
    unsafe { setrlimit(RLIMIT_CORE, &zero) };
    let _ = std::io::stdout().flush();
    match kind {
        // SAFETY: ud2 is an undefined instruction: the kernel kills us with SIGILL right here.
        "4" | "ill" => unsafe { std::arch::asm!("ud2") },
        // SAFETY: int3 is a breakpoint: with no debugger the kernel kills us with SIGTRAP.
        "5" | "trap" => unsafe { std::arch::asm!("int3") },
        // SAFETY: writing through a null pointer faults: the kernel kills us with SIGSEGV.
        "11" | "segv" => unsafe { std::ptr::null_mut::<u8>().write_volatile(1) },
        other => return Err(format!("unknown fault {other:?}: use 4, 5 or 11")),
    }
    Err("the fault did not kill the probe".into())
}

fn kill_self(signal: i32) -> Outcome {
    // SAFETY: kill with our own pid and a signal number.
    if unsafe { kill(pid(), signal) } != 0 {
        return Err(format!(
            "kill({signal}): {}",
            std::io::Error::last_os_error()
        ));
    }
    std::thread::sleep(Duration::from_millis(100));
    out("survived")
}

fn env(args: &[String]) -> Outcome {
    if let Some(key) = args.first() {
        return match std::env::var_os(key) {
            Some(value) => out(value.to_string_lossy()),
            None => Err(format!("{key} is not set")),
        };
    }
    let mut vars: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    vars.sort();
    out(vars.join("\n"))
}

/// Lists open descriptors with fcntl(F_GETFD), which needs no /proc.
fn fds() -> Outcome {
    let open: Vec<String> = (0..4096)
        // SAFETY: F_GETFD only queries the flags of a descriptor number.
        .filter(|&fd| unsafe { fcntl(fd, F_GETFD) } >= 0)
        .map(|fd: i32| fd.to_string())
        .collect();
    out(open.join(" "))
}

fn ls(path: &str) -> Outcome {
    let entries = std::fs::read_dir(path).map_err(|e| format!("ls {path}: {e}"))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    out(names.join("\n"))
}

fn read(path: &str) -> Outcome {
    let text = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&text);
    let _ = stdout.flush();
    Ok(0)
}

fn write(path: &str, text: &str) -> Outcome {
    std::fs::write(path, text).map_err(|e| format!("write {path}: {e}"))?;
    out(format!("wrote {path}"))
}

/// add_key(2) of a "user" key to the process keyring, which only this process can see and which
/// goes when it exits. Keyrings are not namespaced, so Docker's seccomp profile refuses it.
fn add_key() -> Outcome {
    #[cfg(target_arch = "x86_64")]
    const SYS_ADD_KEY: i64 = 248;
    #[cfg(not(target_arch = "x86_64"))]
    const SYS_ADD_KEY: i64 = 217;
    const KEY_SPEC_PROCESS_KEYRING: i64 = -2;
    let payload = b"skiff";
    // SAFETY: add_key reads two NUL-terminated strings and `payload.len()` bytes of `payload`.
    let serial = unsafe {
        syscall(
            SYS_ADD_KEY,
            c"user".as_ptr(),
            c"skiff-probe".as_ptr(),
            payload.as_ptr(),
            payload.len(),
            KEY_SPEC_PROCESS_KEYRING,
        )
    };
    if serial < 0 {
        return Err(format!("add_key: {}", std::io::Error::last_os_error()));
    }
    out(format!("added key {serial}"))
}

fn cat() -> Outcome {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("stdin: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&input);
    let _ = stdout.flush();
    Ok(0)
}

/// The classic escape from chroot(2): chroot into a subdirectory (the kernel does not move the
/// working directory), walk up with `..` past the old root, and chroot to what is found there.
fn escape(marker: &str) -> Outcome {
    // Work relative to the current root, so the directory can be removed after the chroot:
    // chroot(2) does not move the working directory.
    std::env::set_current_dir("/").map_err(|e| format!("cd /: {e}"))?;
    let dir = format!(".probe-escape-{}", pid());
    let _ = std::fs::create_dir(&dir);
    let c_dir = CString::new(dir.as_str()).map_err(|e| e.to_string())?;
    // SAFETY: chroot reads a NUL-terminated path.
    let rc = unsafe { chroot(c_dir.as_ptr()) };
    let chroot_error = std::io::Error::last_os_error();
    let _ = std::fs::remove_dir(&dir);
    if rc != 0 {
        return out(format!("contained: chroot failed ({chroot_error})"));
    }
    for _ in 0..64 {
        let _ = std::env::set_current_dir("..");
    }
    let dot = CString::new(".").map_err(|e| e.to_string())?;
    // SAFETY: chroot reads a NUL-terminated path.
    unsafe { chroot(dot.as_ptr()) };
    if std::path::Path::new(marker).exists() {
        out(format!("escaped: {marker} is visible"))
    } else {
        out(format!("contained: {marker} is not visible"))
    }
}

fn hostname() -> String {
    let mut name = Utsname {
        fields: [[0; 65]; 6],
    };
    // SAFETY: uname fills a struct utsname (six 65-byte fields on Linux).
    unsafe { uname(&mut name) };
    let node = &name.fields[1];
    let end = node.iter().position(|&b| b == 0).unwrap_or(node.len());
    String::from_utf8_lossy(&node[..end]).into_owned()
}

fn uid() -> Outcome {
    // SAFETY: these calls have no arguments and cannot fail.
    let (uid, gid, euid) = unsafe { (getuid(), getgid(), geteuid()) };
    out(format!("uid={uid} gid={gid} euid={euid}"))
}

fn ns(args: &[String]) -> Outcome {
    let kinds: Vec<String> = if args.is_empty() {
        ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
            .map(String::from)
            .to_vec()
    } else {
        args.to_vec()
    };
    let mut lines = Vec::new();
    for kind in kinds {
        let link = std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .map_err(|e| format!("ns {kind}: {e}"))?;
        lines.push(format!("{kind} {}", link.display()));
    }
    out(lines.join("\n"))
}

fn mounts() -> Outcome {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let points: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .collect();
    out(points.join("\n"))
}

fn caps() -> Outcome {
    let text = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Cap")).collect();
    out(lines.join("\n"))
}

fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.strip_suffix(['k', 'm', 'g']) {
        Some(d) => (d, lower.chars().last().unwrap_or('b')),
        None => (lower.as_str(), 'b'),
    };
    let n: usize = number(digits, "size")?;
    let shift = match unit {
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => 0,
    };
    Ok(n << shift)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Some(ms) = text.strip_suffix("ms") {
        return Ok(Duration::from_millis(number(ms, "milliseconds")?));
    }
    let secs = text.strip_suffix('s').unwrap_or(text);
    Ok(Duration::from_secs_f64(number(secs, "seconds")?))
}

fn alloc(bytes: usize) -> Outcome {
    let mut buffer: Vec<u8> = Vec::new();
    buffer
        .try_reserve_exact(bytes)
        .map_err(|e| format!("alloc {bytes}: {e}"))?;
    // Touch every page so the memory is really charged, not just reserved.
    buffer.resize(bytes, 1);
    for page in buffer.chunks_mut(4096) {
        page[0] = 7;
    }
    std::hint::black_box(&buffer);
    out(format!("allocated {} MiB", bytes >> 20))
}

fn fork_many(count: usize) -> Outcome {
    let mut children = Vec::new();
    let mut first_error = None;
    for _ in 0..count {
        // SAFETY: the child only sleeps and exits with _exit; it touches no shared state.
        let child = unsafe { fork() };
        match child {
            0 => {
                std::thread::sleep(Duration::from_secs(3));
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { _exit(0) }
            }
            -1 => {
                first_error.get_or_insert_with(std::io::Error::last_os_error);
            }
            pid => children.push(pid),
        }
    }
    let started = children.len();
    for &child in &children {
        // SAFETY: kill and waitpid on our own children.
        unsafe {
            kill(child, 9);
            waitpid(child, std::ptr::null_mut(), 0);
        }
    }
    match first_error {
        None => out(format!("forked {started} of {count}")),
        Some(err) => {
            out(format!("forked {started} of {count}"))?;
            eprintln!("probe: fork failed after {started}: {err}");
            Ok(0)
        }
    }
}

fn cpu_time() -> Duration {
    let mut usage = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        rest: [0; 14],
    };
    // SAFETY: getrusage fills a struct rusage, whose layout `Rusage` matches on x86_64.
    unsafe { getrusage(RUSAGE_SELF, &mut usage) };
    let micros = |t: &Timeval| t.sec.unsigned_abs() * 1_000_000 + t.usec.unsigned_abs();
    Duration::from_micros(micros(&usage.utime) + micros(&usage.stime))
}

fn burn(wall: Duration) -> Outcome {
    let start = Instant::now();
    let mut x: u64 = 1;
    while start.elapsed() < wall {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    out(format!("cpu {}ms", cpu_time().as_millis()))
}

fn cpus() -> Outcome {
    let mut mask = [0u64; 16];
    // SAFETY: the kernel writes at most `size` bytes into `mask`.
    let rc = unsafe { sched_getaffinity(0, std::mem::size_of_val(&mask), mask.as_mut_ptr()) };
    if rc != 0 {
        return Err(format!(
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        ));
    }
    let set: Vec<String> = (0..1024)
        .filter(|cpu| mask[cpu / 64] & (1 << (cpu % 64)) != 0)
        .map(|cpu| cpu.to_string())
        .collect();
    out(set.join(","))
}

fn processes() -> Result<Vec<(u32, String, char)>, String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))? {
        let Ok(entry) = entry else { continue };
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ...; comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let state = stat[close + 1..].trim_start().chars().next().unwrap_or('?');
        found.push((pid, comm, state));
    }
    found.sort();
    Ok(found)
}

fn ps() -> Outcome {
    let lines: Vec<String> = processes()?
        .into_iter()
        .map(|(pid, comm, _)| format!("{pid} {comm}"))
        .collect();
    out(lines.join("\n"))
}

fn zombies() -> Outcome {
    let count = processes()?.iter().filter(|(_, _, s)| *s == 'Z').count();
    out(format!("zombies {count}"))
}

static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: i32) {
    CAUGHT.store(signal, Ordering::SeqCst);
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        10 => "SIGUSR1",
        12 => "SIGUSR2",
        15 => "SIGTERM",
        28 => "SIGWINCH",
        _ => "signal",
    }
}

fn trap(args: &[String]) -> Outcome {
    for name in args {
        let signo = match name.trim_start_matches("SIG") {
            "HUP" => 1,
            "INT" => 2,
            "QUIT" => 3,
            "USR1" => 10,
            "USR2" => 12,
            "TERM" => 15,
            "WINCH" => 28,
            other => number(other, "signal")?,
        };
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { signal(signo, on_signal) };
    }
    out("ready")?;
    while CAUGHT.load(Ordering::SeqCst) == 0 {
        // SAFETY: pause blocks until a signal handler ran.
        unsafe { pause() };
    }
    let caught = CAUGHT.load(Ordering::SeqCst);
    out(format!("got {}", signal_name(caught)))
}

/// Leaves `count` orphans: each child forks a grandchild, tells us its pid and exits at once,
/// so the grandchild is re-parented to PID 1 (or the nearest subreaper), which must reap it when
/// it exits a moment later. Then counts how many of those grandchildren are still zombies.
fn orphans(count: usize) -> Outcome {
    let mut grandchildren = Vec::new();
    for _ in 0..count {
        let mut fds = [0i32; 2];
        // SAFETY: pipe fills two descriptors into a local array.
        if unsafe { pipe(fds.as_mut_ptr()) } != 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: the children only fork, write, sleep and _exit.
        match unsafe { fork() } {
            0 => {
                // SAFETY: as above.
                let grandchild = unsafe { fork() };
                if grandchild == 0 {
                    std::thread::sleep(Duration::from_millis(200));
                } else {
                    let bytes = grandchild.to_ne_bytes();
                    // SAFETY: writes four bytes from a local array to our pipe.
                    unsafe { write_fd(fds[1], bytes.as_ptr(), bytes.len()) };
                }
                // SAFETY: ends the process without the parent's destructors.
                unsafe { _exit(0) }
            }
            -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
            child => {
                let mut bytes = [0u8; 4];
                // SAFETY: reaps our own direct child, then reads four bytes into a local array.
                unsafe {
                    waitpid(child, std::ptr::null_mut(), 0);
                    read_fd(fds[0], bytes.as_mut_ptr(), bytes.len());
                    close(fds[0]);
                    close(fds[1]);
                }
                grandchildren.push(i32::from_ne_bytes(bytes));
            }
        }
    }
    // Let the orphans exit; then count those that nobody reaped.
    std::thread::sleep(Duration::from_millis(600));
    out(format!("left {count} orphans"))?;
    let unreaped = grandchildren
        .iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .count();
    out(format!("zombies {unreaped}"))
}

fn shm(key: i32) -> Outcome {
    // SAFETY: shmget with size 0 and no flags only looks the key up.
    let id = unsafe { shmget(key, 0, 0) };
    out(if id >= 0 { "shm present" } else { "shm absent" })
}

const IPC_CREAT: i32 = 0o1000;
const IPC_RMID: i32 = 0;

fn shm_make(key: i32) -> Outcome {
    // SAFETY: shmget creates a 4 KiB segment; no memory of ours is involved.
    let id = unsafe { shmget(key, 4096, IPC_CREAT | 0o600) };
    if id < 0 {
        return Err(format!("shmget: {}", std::io::Error::last_os_error()));
    }
    out(format!("shm made {key}"))
}

fn shm_remove(key: i32) -> Outcome {
    // SAFETY: looks the key up, then marks the segment for removal; no buffer is passed.
    let removed = unsafe {
        let id = shmget(key, 0, 0);
        id >= 0 && shmctl(id, IPC_RMID, std::ptr::null_mut()) == 0
    };
    out(if removed { "shm removed" } else { "shm absent" })
}

fn stat(path: &str) -> Outcome {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("stat {path}: {e}"))?;
    out(format!(
        "uid={} gid={} mode={:o}",
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777
    ))
}

/// The IPv4 address and prefix of `iface`, from /proc/net/fib_trie's local entries would be
/// heavy: the SIOCGIFADDR and SIOCGIFNETMASK ioctls give them directly.
fn addr(iface: &str) -> Outcome {
    #[repr(C)]
    struct IfreqAddr {
        name: [u8; 16],
        family: u16,
        port: u16,
        addr: [u8; 4],
        pad: [u8; 16],
    }
    const SIOCGIFADDR: u64 = 0x8915;
    const SIOCGIFNETMASK: u64 = 0x891b;
    unsafe extern "C" {
        fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
        fn ioctl(fd: i32, request: u64, ...) -> i32;
    }
    let mut request = IfreqAddr {
        name: [0; 16],
        family: 0,
        port: 0,
        addr: [0; 4],
        pad: [0; 16],
    };
    if iface.len() >= 16 {
        return Err(format!("interface name {iface:?} is too long"));
    }
    request.name[..iface.len()].copy_from_slice(iface.as_bytes());
    // SAFETY: a datagram socket for ioctls; closed below.
    let fd = unsafe { socket(2, 2, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both ioctls fill the ifreq we own.
    let (got_addr, got_mask, address, mask) = unsafe {
        let a = ioctl(fd, SIOCGIFADDR, &mut request);
        let address = request.addr;
        let m = ioctl(fd, SIOCGIFNETMASK, &mut request);
        (a, m, address, request.addr)
    };
    // SAFETY: closes the socket opened above.
    unsafe { close(fd) };
    if got_addr != 0 || got_mask != 0 {
        return Err(format!(
            "{iface}: no IPv4 address ({})",
            std::io::Error::last_os_error()
        ));
    }
    let prefix: u32 = mask.iter().map(|b| b.count_ones()).sum();
    out(format!("{}/{prefix}", std::net::Ipv4Addr::from(address)))
}

/// The default route's gateway, from /proc/net/route (little-endian hex).
fn gateway() -> Outcome {
    let text =
        std::fs::read_to_string("/proc/net/route").map_err(|e| format!("/proc/net/route: {e}"))?;
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"00000000")
            && let Some(hex) = fields.get(2)
            && let Ok(raw) = u32::from_str_radix(hex, 16)
        {
            return out(format!(
                "{} via {}",
                std::net::Ipv4Addr::from(raw.swap_bytes()),
                fields[0]
            ));
        }
    }
    Err("no default route".into())
}

/// NAME's address from /etc/hosts, as the C library's `files` source would find it. The probe
/// is static, so it cannot load the resolver's plugins; containers find each other by name
/// through /etc/hosts in skiff anyway.
fn resolve(name: &str) -> Result<std::net::IpAddr, String> {
    if let Ok(ip) = name.parse() {
        return Ok(ip);
    }
    let hosts = std::fs::read_to_string("/etc/hosts").map_err(|e| format!("/etc/hosts: {e}"))?;
    hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip: std::net::IpAddr = words.next()?.parse().ok()?;
            words.any(|w| w == name).then_some(ip)
        })
        .next()
        .ok_or_else(|| format!("{name}: not found in /etc/hosts"))
}

/// A fake upstream resolver for the DNS checks (RFC 1035 §4.1): each question gets its own
/// header back with QR set and one answer, an A record of `address` that points at the
/// question's name (the compression pointer 0xc00c). Nothing leaves the machine.
fn dns_answer(listen: &str, address: &str) -> Outcome {
    let ip: std::net::Ipv4Addr = address
        .parse()
        .map_err(|e| format!("{address:?}: not an IPv4 address: {e}"))?;
    let socket =
        std::net::UdpSocket::bind(listen).map_err(|e| format!("listen on {listen}: {e}"))?;
    out("answering")?;
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = socket
            .recv_from(&mut buf)
            .map_err(|e| format!("receive: {e}"))?;
        if n < 12 {
            continue;
        }
        // The question ends after its name (labels up to a zero byte) and four bytes more.
        let mut end = 12;
        while end < n && buf[end] != 0 {
            end += usize::from(buf[end]) + 1;
        }
        end += 5;
        if end > n {
            continue;
        }
        let mut reply = buf[..end].to_vec();
        reply[2] |= 0x80; // QR: a response
        reply[3] = 0x80; // RA, NOERROR
        reply[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]); // ANCOUNT 1
        let asks_a = buf[end - 4..end - 2] == [0, 1];
        if asks_a {
            reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            reply.extend_from_slice(&ip.octets());
        } else {
            reply[7] = 0;
        }
        let _ = socket.send_to(&reply, from);
    }
}

/// One DNS question over TCP (RFC 1035 §4.2.2: each message after its length in two bytes):
/// NAME's A records, from SERVER port 53, printed one per line.
fn dns_tcp(server: &str, name: &str) -> Outcome {
    let mut query = vec![0x51, 0x7e, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]; // RD, one question
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..64).contains(l))
            .ok_or_else(|| format!("{name:?}: not a DNS name"))?;
        query.push(len);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
    let address = format!("{server}:53");
    let mut stream = std::net::TcpStream::connect_timeout(
        &address
            .parse()
            .map_err(|e| format!("{server:?}: not an IP address: {e}"))?,
        std::time::Duration::from_secs(5),
    )
    .map_err(|e| format!("connect to {address}: {e}"))?;
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let length = u16::try_from(query.len()).map_err(|_| "name too long".to_string())?;
    stream
        .write_all(&[&length.to_be_bytes()[..], &query].concat())
        .map_err(|e| format!("send to {address}: {e}"))?;
    let mut head = [0u8; 2];
    std::io::Read::read_exact(&mut stream, &mut head).map_err(|e| format!("read: {e}"))?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(head))];
    std::io::Read::read_exact(&mut stream, &mut reply).map_err(|e| format!("read: {e}"))?;
    let bad = || "a malformed answer".to_string();
    if reply.len() < 12 || reply[3] & 0x0f != 0 {
        return Err(format!(
            "{name}: no answer (rcode {})",
            reply.get(3).map_or(0, |b| b & 15)
        ));
    }
    let answers = u16::from_be_bytes([reply[6], reply[7]]);
    // Past the question: its name, then type and class.
    let mut at = 12;
    while *reply.get(at).ok_or_else(bad)? != 0 {
        at += usize::from(reply[at]) + 1;
    }
    at += 5;
    let mut found = false;
    for _ in 0..answers {
        // The owner name: labels, or a compression pointer (two bytes from 0xc0).
        loop {
            let byte = *reply.get(at).ok_or_else(bad)?;
            if byte & 0xc0 == 0xc0 {
                at += 2;
                break;
            }
            at += usize::from(byte) + 1;
            if byte == 0 {
                break;
            }
        }
        let fixed = reply.get(at..at + 10).ok_or_else(bad)?;
        let kind = u16::from_be_bytes([fixed[0], fixed[1]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = reply.get(at + 10..at + 10 + len).ok_or_else(bad)?;
        if kind == 1 && len == 4 {
            out(std::net::Ipv4Addr::new(data[0], data[1], data[2], data[3]).to_string())?;
            found = true;
        }
        at += 10 + len;
    }
    if !found {
        return Err(format!("{name}: no A record"));
    }
    Ok(0)
}

fn peer_serve(port: u16) -> Outcome {
    // Both families where IPv6 is on: an IPv4 peer shows as itself, not as ::ffff:a.b.c.d.
    let listener = std::net::TcpListener::bind(("::", port))
        .or_else(|_| std::net::TcpListener::bind(("0.0.0.0", port)))
        .map_err(|e| format!("listen on {port}: {e}"))?;
    out("listening")?;
    loop {
        let (stream, peer) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        let _ = (&stream).write_all(format!("{}\n", peer.ip().to_canonical()).as_bytes());
    }
}

fn listen(port: u16, forever: bool) -> Outcome {
    // `[::]` takes IPv4 too (a v4-mapped address) unless IPv6 is off: then 0.0.0.0 alone.
    let listener = std::net::TcpListener::bind(("::", port))
        .or_else(|e| {
            eprintln!("probe: [::]:{port}: {e}: IPv4 only");
            std::net::TcpListener::bind(("0.0.0.0", port))
        })
        .map_err(|e| format!("listen on {port}: {e}"))?;
    out("listening")?;
    loop {
        let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(&stream);
        let _ = std::io::BufRead::read_line(&mut reader, &mut line);
        let answer = format!("hello from {}: {}\n", hostname(), line.trim_end());
        let _ = (&stream).write_all(answer.as_bytes());
        if !forever {
            return out(format!("answered {}", line.trim_end()));
        }
    }
}

fn connect(target: &str, text: &str) -> Outcome {
    let (host, port) = target
        .rsplit_once(':')
        .ok_or_else(|| format!("{target:?}: expected HOST:PORT or [IPV6]:PORT"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = resolve(host)?;
    let port: u16 = number(port, "port")?;
    let address = std::net::SocketAddr::new(ip, port);
    if std::env::var_os(ON_HOST).is_some() {
        stays_on_this_machine(ip)?;
    }
    let stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(3))
        .map_err(|e| format!("connect to {address}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    (&stream)
        .write_all(format!("{text}\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut answer)
        .map_err(|e| format!("receive: {e}"))?;
    out(answer.trim_end())
}

/// Set by the impostor, which runs probe on the host itself: there a container address that no
/// skiff bridge holds would follow the host's default route out of the machine, and the labs
/// send nothing outside it.
const ON_HOST: &str = "PROBE_ON_HOST";

/// Refuses an IPv4 destination whose longest match in the main table (/proc/net/route) is the
/// default route. Loopback and the host's own addresses live in the local table and stay.
fn stays_on_this_machine(ip: std::net::IpAddr) -> Result<(), String> {
    let v4 = match ip {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(v6) => return v6_stays_on_this_machine(v6),
    };
    if v4.is_loopback() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string("/proc/net/route").map_err(|e| format!("/proc/net/route: {e}"))?;
    let target = u32::from(v4);
    let best = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Destination and mask are little-endian hex, as the kernel stores them.
            let destination = u32::from_str_radix(fields.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?.swap_bytes();
            (target & mask == destination).then_some(mask.count_ones())
        })
        .max();
    match best {
        Some(prefix) if prefix > 0 => Ok(()),
        _ => Err(format!(
            "not sent: {v4} is behind no local route, so it would leave this machine"
        )),
    }
}

/// The IPv6 side of [`stays_on_this_machine`]: the longest match in /proc/net/ipv6_route (every
/// table, local ones included) must be longer than the default route's /0.
fn v6_stays_on_this_machine(v6: std::net::Ipv6Addr) -> Result<(), String> {
    if v6.is_loopback() {
        return Ok(());
    }
    let text = std::fs::read_to_string("/proc/net/ipv6_route")
        .map_err(|e| format!("/proc/net/ipv6_route: {e}"))?;
    let target = u128::from(v6);
    let best = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Destination (32 hex digits, network order) and prefix length (hex).
            let destination = u128::from_str_radix(fields.first()?, 16).ok()?;
            let prefix = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            let on_a_link = target & mask == destination && fields.get(9) != Some(&"lo");
            let own_address = prefix == 128 && target == destination;
            (on_a_link || own_address).then_some(prefix)
        })
        .max();
    match best {
        Some(prefix) if prefix > 0 => Ok(()),
        _ => Err(format!(
            "not sent: {v6} is behind no local route, so it would leave this machine"
        )),
    }
}

fn net() -> Outcome {
    let text =
        std::fs::read_to_string("/proc/net/dev").map_err(|e| format!("/proc/net/dev: {e}"))?;
    let names: BTreeSet<&str> = text
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    out(names.into_iter().collect::<Vec<_>>().join("\n"))
}

/// CVE-2019-5736's first move: a process of the container waits for the engine's helper to
/// appear in its pid namespace, and reads `/proc/PID/exe`, which leads to the engine's binary
/// on the host. Pids are handed out in order, so it watches the next few. A program found
/// there that does not exist in this root is the host's: caught, and said at once. The engine
/// defends by making its helper non-dumpable, which turns the look into EACCES.
fn watch_exe(duration: std::time::Duration) -> Outcome {
    out("watching")?;
    let until = std::time::Instant::now() + duration;
    let mut caught = std::collections::BTreeSet::new();
    while std::time::Instant::now() < until {
        let last: i32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        for pid in last..=last + 2 {
            if pid <= 1 || pid == pid_t::from(std::process::id() as i32) || caught.contains(&pid) {
                continue;
            }
            if let Ok(target) = std::fs::read_link(format!("/proc/{pid}/exe"))
                && !target.exists()
            {
                caught.insert(pid);
                out(format!("caught {pid}: it runs {}", target.display()))?;
            }
        }
    }
    Ok(0)
}
