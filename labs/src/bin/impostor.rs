//! `impostor`: a fake engine that proves the labs' isolation checks can fail.
//!
//! It takes the flags of every stage's `run` and does everything an engine does except isolate:
//! it resolves the command inside `--rootfs`, applies `-e` and `-w`, passes stdio, signals and
//! the exit status through, and closes stray descriptors, but it runs the command on the host,
//! in the host's root, namespaces and cgroups. The harness's own tests run every lab against it:
//! a check marked `isolation` that passes here would pass against an engine that isolates
//! nothing, so it would teach nothing.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Flags of any stage that take a value (the impostor ignores most of them).
const VALUE_FLAGS: &[&str] = &[
    "--rootfs",
    "--cidfile",
    "-c",
    "--cgroup-parent",
    "-w",
    "--workdir",
    "-e",
    "--env",
    "--hostname",
    "-h",
    "-u",
    "--user",
    "--root",
    "--pid",
    "--uts",
    "--ipc",
    "--net",
    "--network",
    "--cgroupns",
    "--userns",
    "--cap-add",
    "--cap-drop",
    "--ns",
    "-m",
    "--memory",
    "--memory-swap",
    "--cpus",
    "--cpu-shares",
    "--cpuset-cpus",
    "--pids-limit",
    "--blkio-weight",
    "--entrypoint",
    "--name",
    "-p",
    "--publish",
    "-v",
    "--volume",
    "--mount",
    "--tmpfs",
    "--commit",
    "--pull",
    "--platform",
];

/// Flags of any stage that take no value.
const BOOL_FLAGS: &[&str] = &[
    "--init",
    "--rm",
    "-d",
    "--detach",
    "-i",
    "--interactive",
    "-t",
    "--tty",
    "-it",
    "--privileged",
    "--read-only",
    "--stats",
    "--no-healthcheck",
];

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("impostor: {message}");
    ExitCode::from(code)
}

struct Parsed {
    cidfile: Option<PathBuf>,
    limits: Vec<(String, String)>,
    hostname: Option<String>,
    namespaces: Option<String>,
    user: Option<String>,
    rootfs: Option<PathBuf>,
    workdir: String,
    env: Vec<(String, String)>,
    command: Vec<String>,
}

fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut parsed = Parsed {
        cidfile: None,
        limits: Vec::new(),
        hostname: None,
        namespaces: None,
        user: None,
        rootfs: None,
        workdir: "/".into(),
        env: vec![("PATH".into(), DEFAULT_PATH.into())],
        command: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            parsed.command = args[i + 1..].to_vec();
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            parsed.command = args[i..].to_vec();
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !VALUE_FLAGS.contains(&flag) && !BOOL_FLAGS.contains(&flag) {
            return Err(format!("unknown flag {flag}"));
        }
        let value = if VALUE_FLAGS.contains(&flag) {
            match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    Some(
                        args.get(i)
                            .cloned()
                            .ok_or(format!("{flag} needs a value"))?,
                    )
                }
            }
        } else {
            None
        };
        match (flag, value) {
            ("--rootfs", Some(v)) => parsed.rootfs = Some(PathBuf::from(v)),
            ("--hostname", Some(v)) => parsed.hostname = Some(v),
            ("--cidfile", Some(v)) => parsed.cidfile = Some(PathBuf::from(v)),
            ("-m" | "--memory" | "--cpus" | "--cpuset-cpus", Some(v)) => {
                let name = if flag == "-m" { "--memory" } else { flag };
                parsed.limits.push((name.to_string(), v));
            }
            ("--ns", Some(v)) => parsed.namespaces = Some(v),
            ("-u" | "--user", Some(v)) => parsed.user = Some(v),
            ("-w" | "--workdir", Some(v)) => parsed.workdir = v,
            ("-e" | "--env", Some(v)) => {
                let (key, value) = match v.split_once('=') {
                    Some((k, val)) => (k.to_string(), Some(val.to_string())),
                    None => (v.clone(), std::env::var(&v).ok()),
                };
                if key.is_empty() {
                    return Err(format!("invalid environment variable {v:?}"));
                }
                if let Some(value) = value {
                    parsed.env.retain(|(k, _)| *k != key);
                    parsed.env.push((key, value));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(parsed)
}

fn validate(parsed: &Parsed, rootfs: &Path) -> Result<(), String> {
    if let Some(name) = &parsed.hostname {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!("invalid hostname {name:?}"));
        }
    }
    if let Some(list) = &parsed.namespaces {
        const KNOWN: &[&str] = &["pid", "uts", "ipc", "mnt", "mount", "net", "cgroup", "user"];
        if let Some(bad) = list.split(',').find(|n| !KNOWN.contains(n)) {
            return Err(format!("unknown namespace {bad:?}"));
        }
    }
    if let Some(user) = &parsed.user {
        let name = user.split(':').next().unwrap_or_default();
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
        let known = name.parse::<u32>().is_ok()
            || passwd.lines().any(|l| l.split(':').next() == Some(name));
        if !known {
            return Err(format!("unable to find user {name}"));
        }
    }
    for (flag, value) in &parsed.limits {
        let bad = |why: &str| Err(format!("{flag} {value:?}: {why}"));
        match flag.as_str() {
            "--memory" => {
                let lower = value.to_ascii_lowercase();
                let (digits, shift) = match lower.strip_suffix(['b', 'k', 'm', 'g']) {
                    Some(d) if lower.ends_with('k') => (d, 10),
                    Some(d) if lower.ends_with('m') => (d, 20),
                    Some(d) if lower.ends_with('g') => (d, 30),
                    Some(d) => (d, 0),
                    None => (lower.as_str(), 0),
                };
                match digits.parse::<u64>() {
                    Ok(n) if (n << shift) < 6 << 20 => return bad("below the minimum of 6 MiB"),
                    Ok(_) => {}
                    Err(_) => return bad("not a size"),
                }
            }
            "--cpus" => match value.parse::<f64>() {
                Ok(n) if n >= 0.01 => {}
                _ => return bad("must be a number of CPUs, at least 0.01"),
            },
            _ => {
                let online =
                    std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
                let max: u32 = online
                    .trim()
                    .rsplit(['-', ','])
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let too_high = value
                    .split([',', '-'])
                    .any(|n| n.parse::<u32>().map_or(true, |n| n > max));
                if too_high {
                    return bad(&format!("this host has CPUs {}", online.trim()));
                }
            }
        }
    }
    Ok(())
}

/// Finds the command inside the rootfs, the way PATH lookup would inside a container.
fn resolve(rootfs: &Path, command: &str, path: &str) -> Result<PathBuf, u8> {
    let inside = |p: &str| rootfs.join(p.trim_start_matches('/'));
    let candidates: Vec<PathBuf> = if command.contains('/') {
        vec![inside(command)]
    } else {
        path.split(':')
            .map(|dir| inside(dir).join(command))
            .collect()
    };
    let mut denied = false;
    for candidate in candidates {
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
        denied = true;
    }
    Err(if denied { 126 } else { 127 })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("run") {
        return fail("usage: impostor run [FLAGS] [--] COMMAND [ARG...]", 125);
    }
    let parsed = match parse(&args[1..]) {
        Ok(p) => p,
        Err(e) => return fail(&e, 125),
    };
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return fail("must run as root", 125);
    }
    let Some(rootfs) = parsed.rootfs.clone() else {
        return fail("--rootfs is required", 125);
    };
    if !rootfs.is_dir() {
        return fail(
            &format!("rootfs {}: no such directory", rootfs.display()),
            125,
        );
    }
    // An honest engine validates its flags; the impostor does too, it just does not isolate.
    if let Err(message) = validate(&parsed, &rootfs) {
        return fail(&message, 125);
    }
    if let Some(path) = &parsed.cidfile {
        let id: String = (0..64)
            .map(|i| char::from(b"0123456789abcdef"[(std::process::id() as usize + i * 7) % 16]))
            .collect();
        if let Err(e) = std::fs::write(path, id) {
            return fail(&format!("--cidfile {}: {e}", path.display()), 125);
        }
    }
    let Some(command) = parsed.command.first() else {
        return fail("no command given", 125);
    };
    let path = parsed
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let program = match resolve(&rootfs, command, path) {
        Ok(p) => p,
        Err(code) => return fail(&format!("exec {command:?}: cannot run it"), code),
    };
    let workdir = rootfs.join(parsed.workdir.trim_start_matches('/'));
    if !workdir.is_dir() {
        return fail(
            &format!("working directory {} does not exist", parsed.workdir),
            125,
        );
    }
    run(program, &parsed.command[1..], &parsed.env, &workdir)
}

/// Runs the program on the host, forwarding signals and passing its status back.
fn run(program: PathBuf, args: &[String], env: &[(String, String)], dir: &Path) -> ExitCode {
    // SAFETY: sigset manipulation on a local, zero-initialised set; blocking signals in this
    // single-threaded process so sigwaitinfo can receive them.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGCHLD,
        ] {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let mut command = Command::new(&program);
    command
        .arg0(OsString::from(program.file_name().unwrap_or_default()))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir);
    // SAFETY: only async-signal-safe calls: unblock signals, close stray descriptors.
    unsafe {
        command.pre_exec(move || {
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    // Orphans of the command come to us, and we reap them, as a careful engine would.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return fail(&format!("exec {}: {e}", program.display()), 126),
    };
    let main = i32::try_from(child.id()).unwrap_or(-1);
    loop {
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes into a local integer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == main {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                return ExitCode::from(u8::try_from(code).unwrap_or(125));
            }
        }
        // SAFETY: waits for one of the signals blocked above; no memory is shared.
        let signal = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if signal > 0
            && signal != libc::SIGCHLD
            && let Ok(pid) = i32::try_from(child.id())
        {
            // SAFETY: forwards a signal to our own child.
            unsafe { libc::kill(pid, signal) };
        }
    }
}
