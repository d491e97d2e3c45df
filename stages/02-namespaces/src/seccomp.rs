//! Seccomp: the system calls a container may make at all.
//!
//! Capabilities decide what root may do with a system call; seccomp (seccomp(2)) decides
//! whether the call reaches the kernel in the first place. A process hands the kernel a small
//! program in classic BPF that looks at each system call's number and arguments and answers
//! "allow", "fail with this errno" or "kill". Once installed it can never be removed, it is
//! inherited by every child and kept across execve, and `/proc/PID/status` says `Seccomp: 2`.
//!
//! skiff uses Docker's default profile, unchanged: `seccomp/default.json` (moby's
//! `profiles/seccomp/default.json`). It lists about 350 calls that ordinary programs make and
//! refuses the rest with `EPERM`: `keyctl` and `add_key` (keyrings are not namespaced),
//! `unshare` and `clone` with namespace flags, `mount`, `bpf`, `perf_event_open`, kernel
//! modules, `reboot`... Some rules depend on the container's capabilities (`--cap-add
//! SYS_ADMIN` also allows `mount` and `unshare`), on the architecture, on the kernel version;
//! some on arguments (`personality` only with the few values programs use, `socket` for
//! anything but `AF_VSOCK`). [`compile`] evaluates those conditions for one container and turns
//! what remains into BPF with the `seccompiler` crate, in the parent, before the clone; the
//! child only makes the one system call that installs it ([`InstallFilter`]).
//!
//! `--security-opt seccomp=unconfined` runs without a filter, `seccomp=PROFILE.json` with
//! another profile in Docker's format.
//!
//! seccompiler gives every rule of one filter the same action, where Docker's profiles give
//! each rule its own (`clone3` fails with `ENOSYS`, so that C libraries fall back to `clone`,
//! whose flags the filter can see). So [`compile`] makes one seccompiler filter per action and
//! chains them into one program: where a filter would return "no match", it jumps to the next
//! filter instead, and the last answers the profile's default action. Only the architecture
//! the engine was built for is allowed: a 32-bit program in the container is killed (Docker
//! also allows the x86 and x32 system calls on x86_64).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use nix::errno::Errno;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::Deserialize;

use crate::security::capability_number;

// ANCHOR: default_profile
/// Docker's default profile (moby's `profiles/seccomp/default.json`, Apache-2.0), kept as data
/// next to the code and compiled into the engine.
pub const DOCKER_DEFAULT: &str = include_str!("../seccomp/default.json");
// ANCHOR_END: default_profile

/// The kernel's limit on the length of one filter (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

/// What went wrong with `--security-opt` or a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// An option skiff does not know.
    #[error(
        "invalid --security-opt {0:?}: use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges[=true|false]"
    )]
    BadOption(String),
    /// The profile file cannot be read.
    #[error("read seccomp profile {path} (give a JSON file in Docker's format)")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The profile can be read but not understood.
    #[error("seccomp profile {name}: {problem}")]
    Profile {
        /// The file, or which built-in profile.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
}

// ANCHOR: seccomp
/// Which filter a container gets: `--security-opt seccomp=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter at all: `seccomp=unconfined`, and what `--privileged` means (it sets
    /// [`SecurityOpts::seccomp`] to this).
    Unconfined,
    /// A profile in Docker's format, in this file.
    File(PathBuf),
    /// A profile in Docker's format, as text: what `create` keeps in the container's record in
    /// place of the file, as Docker does, so that a later start does not need the file.
    Inline(String),
}

/// The options of `--security-opt` that skiff knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// `no-new-privileges`: setuid and file capabilities no longer raise privileges. Off by
    /// default, as in Docker.
    pub no_new_privileges: bool,
}
// ANCHOR_END: seccomp

impl SecurityOpts {
    /// Reads the `--security-opt` values, Docker's way: `KEY=VALUE` (or the older `KEY:VALUE`).
    pub fn parse(opts: &[String]) -> Result<Self, SeccompError> {
        let mut parsed = SecurityOpts::default();
        for opt in opts {
            let bad = || SeccompError::BadOption(opt.clone());
            if opt == "no-new-privileges" {
                parsed.no_new_privileges = true;
                continue;
            }
            let (key, value) = opt
                .split_once('=')
                .or_else(|| opt.split_once(':'))
                .ok_or_else(bad)?;
            match key {
                "no-new-privileges" => {
                    parsed.no_new_privileges = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad()),
                    }
                }
                "seccomp" if value == "unconfined" => parsed.seccomp = Seccomp::Unconfined,
                "seccomp" if value.trim_start().starts_with('{') => {
                    parsed.seccomp = Seccomp::Inline(value.to_string())
                }
                "seccomp" if !value.is_empty() => parsed.seccomp = Seccomp::File(value.into()),
                // There is no AppArmor or SELinux in skiff: nothing to lift.
                "apparmor" if value == "unconfined" => {}
                "label" if value == "disable" => {}
                _ => return Err(bad()),
            }
        }
        Ok(parsed)
    }

    /// The confinement of a process with the capabilities `caps`: the filter compiled for them,
    /// and no_new_privs.
    pub fn confinement(&self, caps: &BTreeSet<u32>) -> Result<Confinement, SeccompError> {
        let compiled = |name: &str, json: &str| {
            compile(json, caps).map_err(|problem| SeccompError::Profile {
                name: name.to_string(),
                problem,
            })
        };
        let program = match &self.seccomp {
            Seccomp::Unconfined => None,
            // About 0.35 ms (benches/namespaces.rs): cheap enough to do at every start.
            Seccomp::Default => Some(compiled("Docker's default", DOCKER_DEFAULT)?),
            Seccomp::File(path) => {
                let json = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some(compiled(&path.display().to_string(), &json)?)
            }
            Seccomp::Inline(json) => Some(compiled("kept with the container", json)?),
        };
        Ok(Confinement {
            no_new_privs: self.no_new_privileges,
            filter: program.map(|p| Arc::new(InstallFilter::new(p))),
        })
    }
}

/// What [`crate::security::Privileges`] needs besides capabilities and user: no_new_privs, and
/// the seccomp filter, compiled.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// The filter to install; `None`: unconfined.
    pub filter: Option<Arc<InstallFilter>>,
}

// ANCHOR: profile
/// A seccomp profile in Docker's format (the part skiff reads; other fields are ignored, as
/// Docker ignores them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    /// What happens to a call no rule names: `SCMP_ACT_ERRNO` in Docker's.
    default_action: String,
    /// The errno of an `SCMP_ACT_ERRNO` default (1, `EPERM`, when not given).
    default_errno_ret: Option<u32>,
    /// The rules.
    syscalls: Option<Vec<Rule>>,
}

/// One entry of `syscalls`: these calls get this action, when the conditions hold.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Option<Vec<String>>,
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold.
    args: Option<Vec<Arg>>,
    /// The rule counts only if all of these hold...
    includes: Option<When>,
    /// ...and none of these.
    excludes: Option<When>,
}

/// A condition on the container rather than on the call.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct When {
    /// Capabilities in the container's bounding set (`CAP_SYS_ADMIN`).
    caps: Option<Vec<String>>,
    /// Architectures, in libseccomp's words (`amd64`, `arm64`).
    arches: Option<Vec<String>>,
    /// A kernel version, `4.8`.
    min_kernel: Option<String>,
}

/// A condition on one argument: `args[index] OP value`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}
// ANCHOR_END: profile

/// This machine's architecture in libseccomp's words, as profiles name it.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The running kernel's version, major and minor (`/proc/sys/kernel/osrelease`).
fn kernel_version() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|release| parse_version(&release))
        .unwrap_or((0, 0))
}

/// `6.1.0-18-amd64` is (6, 1).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// What a profile's action words mean.
fn action(word: &str, errno: Option<u32>) -> Result<SeccompAction, String> {
    let errno = errno.unwrap_or(libc::EPERM.unsigned_abs());
    Ok(match word {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno),
        other => {
            return Err(format!(
                "unknown action {other:?}: use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG or SCMP_ACT_TRACE"
            ));
        }
    })
}

/// An argument condition in seccompiler's terms. Arguments are compared as 64-bit values, as
/// libseccomp (and so Docker) does on 64-bit machines.
fn condition(arg: &Arg) -> Result<SeccompCondition, String> {
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_EQ" => (SeccompCmpOp::Eq, arg.value),
        "SCMP_CMP_NE" => (SeccompCmpOp::Ne, arg.value),
        "SCMP_CMP_LT" => (SeccompCmpOp::Lt, arg.value),
        "SCMP_CMP_LE" => (SeccompCmpOp::Le, arg.value),
        "SCMP_CMP_GT" => (SeccompCmpOp::Gt, arg.value),
        "SCMP_CMP_GE" => (SeccompCmpOp::Ge, arg.value),
        // `(arg & value) == valueTwo`: clone's namespace flags all clear.
        "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
        other => {
            return Err(format!(
                "unknown comparison {other:?}: use SCMP_CMP_EQ, NE, LT, LE, GT, GE or MASKED_EQ"
            ));
        }
    };
    SeccompCondition::new(arg.index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| format!("argument {}: {e}", arg.index))
}

/// Whether a rule applies to a container with these capabilities, on this machine.
fn applies(rule: &Rule, caps: &BTreeSet<u32>, kernel: (u32, u32)) -> Result<bool, String> {
    let has_cap = |name: &String| -> Result<bool, String> {
        let number = capability_number(name).map_err(|e| e.to_string())?;
        Ok(caps.contains(&number))
    };
    let at_least = |version: &String| -> Result<bool, String> {
        let wanted = parse_version(version)
            .ok_or_else(|| format!("minKernel {version:?} is not a version such as 4.8"))?;
        Ok(kernel >= wanted)
    };
    let arch = native_arch();
    if let Some(when) = &rule.includes {
        for cap in when.caps.iter().flatten() {
            if !has_cap(cap)? {
                return Ok(false);
            }
        }
        if let Some(arches) = &when.arches
            && !arches.iter().any(|a| a == arch)
        {
            return Ok(false);
        }
        if let Some(version) = &when.min_kernel
            && !at_least(version)?
        {
            return Ok(false);
        }
    }
    if let Some(when) = &rule.excludes {
        for cap in when.caps.iter().flatten() {
            if has_cap(cap)? {
                return Ok(false);
            }
        }
        if when.arches.iter().flatten().any(|a| a == arch) {
            return Ok(false);
        }
        if let Some(version) = &when.min_kernel
            && at_least(version)?
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The rules of one action: each call's alternatives (an empty list: the call always matches).
type Rules = BTreeMap<i64, Vec<SeccompRule>>;

// ANCHOR: compile
/// Compiles a profile in Docker's format to a BPF program for a container whose bounding set
/// is `caps`. An error is a sentence about what is wrong with the profile.
pub fn compile(json: &str, caps: &BTreeSet<u32>) -> Result<BpfProgram, String> {
    let profile: Profile = serde_json::from_str(json).map_err(|e| format!("not valid: {e}"))?;
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let kernel = kernel_version();
    // One group of rules per action, in the order the profile first uses each action.
    let mut groups: Vec<(SeccompAction, Rules)> = Vec::new();
    for rule in profile.syscalls.iter().flatten() {
        let act = action(&rule.action, rule.errno_ret)?;
        let conditions = rule
            .args
            .iter()
            .flatten()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        // A rule that does what the default does changes nothing (libseccomp refuses it).
        if !applies(rule, caps, kernel)? || act == default {
            continue;
        }
        let names = rule.names.iter().flatten().chain(rule.name.iter());
        // Calls this kernel's architecture does not have (`chown32` on x86_64) are left out,
        // as runc leaves them out.
        let numbers: Vec<i64> = names
            .filter_map(|name| name.parse::<syscalls::Sysno>().ok())
            .map(|sysno| i64::from(sysno.id()))
            .collect();
        let index = match groups.iter().position(|(a, _)| *a == act) {
            Some(index) => index,
            None => {
                groups.push((act, Rules::new()));
                groups.len() - 1
            }
        };
        let rules = &mut groups[index].1;
        for number in numbers {
            match rules.get_mut(&number) {
                // Already matched whatever its arguments: a condition cannot add to that.
                Some(alternatives) if alternatives.is_empty() => {}
                Some(alternatives) if conditions.is_empty() => alternatives.clear(),
                Some(alternatives) => alternatives.push(rule_of(&conditions)?),
                None if conditions.is_empty() => {
                    rules.insert(number, Vec::new());
                }
                None => {
                    rules.insert(number, vec![rule_of(&conditions)?]);
                }
            }
        }
    }
    chain(groups, default)
}
// ANCHOR_END: compile

fn rule_of(conditions: &[SeccompCondition]) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions.to_vec()).map_err(|e| e.to_string())
}

/// The machine's architecture for seccompiler.
fn target_arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        format!(
            "seccomp filters are not supported on {}",
            std::env::consts::ARCH
        )
    })
}

// ANCHOR: chain
/// One program from one seccompiler filter per action: each filter's "no match" becomes a jump
/// to the start of the next filter, and the last program answers `default`.
fn chain(
    groups: Vec<(SeccompAction, Rules)>,
    default: SeccompAction,
) -> Result<BpfProgram, String> {
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const JA: u16 = 0x05; // BPF_JMP | BPF_JA
    let arch = target_arch()?;
    // A "no match" answer that no real action of this profile uses.
    let used: Vec<u32> = groups.iter().map(|(a, _)| u32::from(a.clone())).collect();
    let next = (0..=0xffff)
        .map(SeccompAction::Trace)
        .find(|a| !used.contains(&u32::from(a.clone())) && *a != default)
        .ok_or("the profile uses every SCMP_ACT_TRACE value")?;
    let next_code = u32::from(next.clone());
    let mut program = BpfProgram::new();
    for (act, rules) in groups {
        let filter =
            SeccompFilter::new(rules, next.clone(), act, arch).map_err(|e| e.to_string())?;
        let mut part: BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        let len = part.len();
        for (at, instruction) in part.iter_mut().enumerate() {
            if instruction.code == RET && instruction.k == next_code {
                instruction.code = JA;
                instruction.k = u32::try_from(len - at - 1).map_err(|e| e.to_string())?;
            }
        }
        program.append(&mut part);
    }
    // No rule at all, with the default answer: checks the architecture, then answers.
    let last = SeccompFilter::new(Rules::new(), default, next, arch).map_err(|e| e.to_string())?;
    let mut last: BpfProgram = last
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    program.append(&mut last);
    if program.len() > MAX_INSTRUCTIONS {
        return Err(format!(
            "it compiles to {} BPF instructions, more than the kernel's {MAX_INSTRUCTIONS}",
            program.len()
        ));
    }
    Ok(program)
}
// ANCHOR_END: chain

// ANCHOR: install
/// The child's step that installs a compiled filter: one seccomp(2) call on a program made
/// before the clone.
pub struct InstallFilter {
    program: BpfProgram,
    /// The length, as the kernel's `sock_fprog` wants it (checked when compiled).
    len: u16,
}

impl InstallFilter {
    /// The step for `program`, which [`compile`] made (at most 4096 instructions).
    pub fn new(program: BpfProgram) -> Self {
        let len = u16::try_from(program.len()).unwrap_or(u16::MAX);
        InstallFilter { program, len }
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (never, for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }
}

impl chroot::ChildStep for InstallFilter {
    fn run(&self) -> Result<(), Errno> {
        let fprog = libc::sock_fprog {
            len: self.len,
            // seccompiler's `sock_filter` has the kernel's layout, as libc's has.
            filter: self.program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: `fprog` points at `len` instructions of `program`, which lives as long as the
        // step; the kernel copies the program and keeps no pointer into it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_ulong,
                &fprog as *const libc::sock_fprog,
            )
        };
        Errno::result(rc).map(drop)
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        match errno {
            Errno::EACCES => Some("installing a filter needs CAP_SYS_ADMIN or no_new_privs"),
            Errno::EINVAL => Some(
                "this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER): run with --security-opt seccomp=unconfined",
            ),
            _ => None,
        }
    }
}
// ANCHOR_END: install

impl fmt::Debug for InstallFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstallFilter({} instructions)", self.program.len())
    }
}

impl fmt::Display for InstallFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("install the seccomp filter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::capability_set;

    fn docker_caps() -> BTreeSet<u32> {
        capability_set(&[], &[]).unwrap()
    }

    /// Runs `program` on one system call, as the kernel would: a tiny classic-BPF interpreter
    /// for the instructions seccompiler emits.
    fn verdict(program: &BpfProgram, nr: i64, args: [u64; 6]) -> u32 {
        let arch: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
        let mut data = Vec::new();
        data.extend_from_slice(&u32::try_from(nr).unwrap().to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for arg in args {
            data.extend_from_slice(&arg.to_ne_bytes());
        }
        let word = |at: usize| u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &program[pc];
            pc += 1;
            match i.code {
                0x20 => a = word(i.k as usize),
                0x54 => a &= i.k,
                0x05 => pc += i.k as usize,
                0x15 | 0x25 | 0x35 => {
                    let taken = match i.code {
                        0x15 => a == i.k,
                        0x25 => a > i.k,
                        _ => a >= i.k,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                0x06 => return i.k,
                code => panic!("instruction {code:#x} not interpreted"),
            }
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const ENOSYS: u32 = 0x0005_0026;

    #[test]
    fn dockers_profile_allows_the_ordinary_and_refuses_the_rest() {
        let program = compile(DOCKER_DEFAULT, &docker_caps()).unwrap();
        assert!(program.len() < MAX_INSTRUCTIONS);
        let run = |nr, args| verdict(&program, nr, args);
        assert_eq!(run(libc::SYS_read, [0; 6]), ALLOW);
        assert_eq!(run(libc::SYS_execve, [0; 6]), ALLOW);
        assert_eq!(run(libc::SYS_keyctl, [0; 6]), EPERM);
        assert_eq!(run(libc::SYS_add_key, [0; 6]), EPERM);
        assert_eq!(run(libc::SYS_unshare, [0x1000_0000, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(libc::SYS_mount, [0; 6]), EPERM);
        // clone: a plain fork is fine, a new user namespace is not.
        assert_eq!(run(libc::SYS_clone, [0x0120_0011, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(libc::SYS_clone, [0x1000_0000, 0, 0, 0, 0, 0]), EPERM);
        // clone3 says "not here" so that the C library falls back to clone.
        assert_eq!(run(libc::SYS_clone3, [0; 6]), ENOSYS);
        // personality: only the values programs use.
        assert_eq!(run(libc::SYS_personality, [0; 6]), ALLOW);
        assert_eq!(
            run(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]),
            EPERM
        );
        // socket: anything but AF_VSOCK.
        assert_eq!(run(libc::SYS_socket, [2, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(libc::SYS_socket, [40, 0, 0, 0, 0, 0]), EPERM);
    }

    #[test]
    fn capabilities_open_their_system_calls() {
        let admin = capability_set(&["SYS_ADMIN".into()], &[]).unwrap();
        let program = compile(DOCKER_DEFAULT, &admin).unwrap();
        assert_eq!(verdict(&program, libc::SYS_mount, [0; 6]), ALLOW);
        assert_eq!(verdict(&program, libc::SYS_unshare, [0; 6]), ALLOW);
        assert_eq!(verdict(&program, libc::SYS_clone3, [0; 6]), ALLOW);
        let without_chroot = capability_set(&[], &["SYS_CHROOT".into()]).unwrap();
        let program = compile(DOCKER_DEFAULT, &without_chroot).unwrap();
        assert_eq!(verdict(&program, libc::SYS_chroot, [0; 6]), EPERM);
        let program = compile(DOCKER_DEFAULT, &docker_caps()).unwrap();
        assert_eq!(verdict(&program, libc::SYS_chroot, [0; 6]), ALLOW);
    }

    #[test]
    fn options_are_dockers() {
        let parse = |opts: &[&str]| {
            SecurityOpts::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(parse(&[]).unwrap(), SecurityOpts::default());
        let opts = parse(&["seccomp=unconfined", "no-new-privileges"]).unwrap();
        assert_eq!(opts.seccomp, Seccomp::Unconfined);
        assert!(opts.no_new_privileges);
        assert!(
            !parse(&["no-new-privileges=false"])
                .unwrap()
                .no_new_privileges
        );
        assert!(
            parse(&["no-new-privileges:true"])
                .unwrap()
                .no_new_privileges
        );
        assert_eq!(
            parse(&["seccomp=/etc/p.json"]).unwrap().seccomp,
            Seccomp::File("/etc/p.json".into())
        );
        assert!(matches!(
            parse(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])
                .unwrap()
                .seccomp,
            Seccomp::Inline(_)
        ));
        for bad in [
            "seccomp",
            "no-new-privileges=maybe",
            "selinux=on",
            "apparmor=x",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let caps = docker_caps();
        let err = compile("{", &caps).unwrap_err();
        assert!(err.contains("not valid"), "{err}");
        let err = compile(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, &caps).unwrap_err();
        assert!(err.contains("SCMP_ACT_NOPE"), "{err}");
        let bad_op = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],
            "action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_SOMETIMES"}]}]}"#;
        let err = compile(bad_op, &caps).unwrap_err();
        assert!(err.contains("SCMP_CMP_SOMETIMES"), "{err}");
        let bad_index = bad_op
            .replace("\"index\":0", "\"index\":9")
            .replace("SOMETIMES", "EQ");
        assert!(compile(&bad_index, &caps).is_err());
    }

    #[test]
    fn a_deny_list_profile_allows_by_default() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","chown32"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
        let program = compile(json, &docker_caps()).unwrap();
        assert_eq!(verdict(&program, libc::SYS_mkdir, [0; 6]), 0x0005_000d);
        assert_eq!(verdict(&program, libc::SYS_read, [0; 6]), ALLOW);
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_version("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("x"), None);
    }
}
